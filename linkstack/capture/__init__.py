"""Captures: :mod:`.pcap` (the pcap writer, the node registry, the one reader for pcap
and pcapng), :mod:`.replay` (a capture fed back through the receive chains) and
:mod:`.samples` (the deterministic sample captures of ``pcaps/``)."""
