"""Contact windows: when each station sees each satellite, when linked satellites
see each other, and the contact plan that lists them (JSON, a table, and the
contact plans of the DTN bundle agents NASA ION and NASA HDTN).

One job a module:
- :mod:`~channels.contacts.windows`: the results (:class:`GroundWindow`,
  :class:`IslWindow`, their :class:`Samples`);
- :mod:`~channels.contacts.search`: what both searches share (the time grid, the
  Hermite-interpolated orbits of a chunk, edge bisection, peak search, the tracker
  that joins samples into windows across chunks), and how the windows are found;
- :mod:`~channels.contacts.ground`: ground passes (:func:`ground_windows`);
- :mod:`~channels.contacts.laser`: laser-link windows (:func:`isl_windows`);
- :mod:`~channels.contacts.sunlight`: when each satellite is sunlit, in the
  penumbra or in the umbra (:func:`sunlight_intervals`, :func:`sunlight_summary`);
- :mod:`~channels.contacts.plan`: the :class:`ContactPlan` of a scenario
  (:func:`contact_plan`), as JSON and as a pass table (:func:`format_table`);
- :mod:`~channels.contacts.dtn`: the plan as a DTN bundle agent schedules it
  (:func:`dtn_schedule`, with the links' rates and acquisition times in
  :class:`DtnLinks`), for ION's ionadmin (:func:`to_ion`) and HDTN (:func:`to_hdtn`).

What this package exports below is its API; import it from here.
"""

from channels.contacts.dtn import (
    DtnContact,
    DtnLinks,
    DtnRange,
    DtnSchedule,
    dtn_schedule,
    to_hdtn,
    to_ion,
)
from channels.contacts.ground import DEFAULT_BLOCK_SATS, DEFAULT_STEP_S, ground_windows
from channels.contacts.laser import (
    DEFAULT_BLOCK_PAIRS,
    DEFAULT_ISL_MARGIN_M,
    DEFAULT_ISL_MAX_RANGE_M,
    DEFAULT_ISL_STEP_S,
    isl_windows,
)
from channels.contacts.plan import ContactPlan, contact_plan, format_table
from channels.contacts.search import (
    DEFAULT_CHUNK_S,
    DEFAULT_COARSE_STEP_S,
    EDGE_TOLERANCE_S,
    SearchCounts,
)
from channels.contacts.sunlight import (
    DEFAULT_SUNLIGHT_STEP_S,
    SunlightInterval,
    SunlightSummary,
    sunlight_intervals,
    sunlight_summary,
)
from channels.contacts.windows import GroundWindow, IslWindow, Samples

__all__ = [
    "DEFAULT_BLOCK_PAIRS",
    "DEFAULT_BLOCK_SATS",
    "DEFAULT_CHUNK_S",
    "DEFAULT_COARSE_STEP_S",
    "DEFAULT_ISL_MARGIN_M",
    "DEFAULT_ISL_MAX_RANGE_M",
    "DEFAULT_ISL_STEP_S",
    "DEFAULT_STEP_S",
    "DEFAULT_SUNLIGHT_STEP_S",
    "EDGE_TOLERANCE_S",
    "ContactPlan",
    "DtnContact",
    "DtnLinks",
    "DtnRange",
    "DtnSchedule",
    "GroundWindow",
    "IslWindow",
    "Samples",
    "SearchCounts",
    "SunlightInterval",
    "SunlightSummary",
    "contact_plan",
    "dtn_schedule",
    "format_table",
    "ground_windows",
    "isl_windows",
    "sunlight_intervals",
    "sunlight_summary",
    "to_hdtn",
    "to_ion",
]
