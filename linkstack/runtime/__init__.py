"""The runtime: the asyncio glue that runs the sans-I/O stack over emulated links.

:mod:`.clock` the one clock's implementations (emulated and wall time),
:mod:`.config` what to emulate, :mod:`.cop1_link` COP-1 over a pair of links,
:mod:`.routing` contacts, routes and the station that tracks each satellite,
:mod:`.site` what the nodes of a process share, :mod:`.radio` the physical links and
their capture, :mod:`.trace` the hops of each message, :mod:`.satellite` and
:mod:`.mission_control` the nodes, :mod:`.emulation` a scenario in one process,
:mod:`.scenario` scenario files, :mod:`.report` run statistics.
"""
