"""Contact windows: when each station sees each satellite, when linked satellites
see each other, and the contact plan that lists them (JSON, NASA ION, a table).

One job a module:
- :mod:`~channels.contacts.windows`: the results (:class:`GroundWindow`,
  :class:`IslWindow`, their :class:`Samples`);
- :mod:`~channels.contacts.search`: what both searches share (the time grid, the
  Hermite-interpolated orbits of a chunk, edge bisection, peak search, the tracker
  that joins samples into windows across chunks), and how the windows are found;
- :mod:`~channels.contacts.ground`: ground passes (:func:`ground_windows`);
- :mod:`~channels.contacts.laser`: laser-link windows (:func:`isl_windows`);
- :mod:`~channels.contacts.plan`: the :class:`ContactPlan` of a scenario
  (:func:`contact_plan`) and its exports (:func:`to_ion`, :func:`format_table`).

What this package exports below is its API; import it from here.
"""

from channels.contacts.ground import DEFAULT_BLOCK_SATS, DEFAULT_STEP_S, ground_windows
from channels.contacts.laser import (
    DEFAULT_BLOCK_PAIRS,
    DEFAULT_ISL_MARGIN_M,
    DEFAULT_ISL_MAX_RANGE_M,
    DEFAULT_ISL_STEP_S,
    isl_windows,
)
from channels.contacts.plan import (
    DEFAULT_DOWNLINK_BYTES_PER_S,
    DEFAULT_ISL_BYTES_PER_S,
    DEFAULT_UPLINK_BYTES_PER_S,
    ContactPlan,
    contact_plan,
    format_table,
    to_ion,
)
from channels.contacts.search import (
    DEFAULT_CHUNK_S,
    DEFAULT_COARSE_STEP_S,
    EDGE_TOLERANCE_S,
    SearchCounts,
)
from channels.contacts.windows import GroundWindow, IslWindow, Samples

__all__ = [
    "DEFAULT_BLOCK_PAIRS",
    "DEFAULT_BLOCK_SATS",
    "DEFAULT_CHUNK_S",
    "DEFAULT_COARSE_STEP_S",
    "DEFAULT_DOWNLINK_BYTES_PER_S",
    "DEFAULT_ISL_BYTES_PER_S",
    "DEFAULT_ISL_MARGIN_M",
    "DEFAULT_ISL_MAX_RANGE_M",
    "DEFAULT_ISL_STEP_S",
    "DEFAULT_STEP_S",
    "DEFAULT_UPLINK_BYTES_PER_S",
    "EDGE_TOLERANCE_S",
    "ContactPlan",
    "GroundWindow",
    "IslWindow",
    "Samples",
    "SearchCounts",
    "contact_plan",
    "format_table",
    "ground_windows",
    "isl_windows",
    "to_ion",
]
