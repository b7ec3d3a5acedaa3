"""The runtime: the asyncio glue that runs the sans-I/O stack over emulated links.

:mod:`.clock` the one clock (emulated or wall), :mod:`.cop1_link` COP-1 over a pair of
links, :mod:`.routing` contacts and routes, :mod:`.node` the nodes and the emulation,
:mod:`.scenario` scenario files, :mod:`.report` run statistics.
"""
