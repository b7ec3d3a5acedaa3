"""Captures: :mod:`.network` (the port table, the node addresses, the side file),
:mod:`.pcap` (the pcap writer), :mod:`.reader` (the one reader, of pcap and pcapng),
:mod:`.replay` (a capture's units through the receive chains, sans-I/O) and
:mod:`.replay_cli` (``linkstack replay``: the file, the clock, the printing), and
:mod:`.samples` (the deterministic sample captures of ``pcaps/``)."""
