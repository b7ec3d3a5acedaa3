"""COP-1 (CCSDS 232.1-B-2), sans-I/O: :mod:`.clcw` the CLCW carried in the TM OCF,
:mod:`.commands` the control commands (Unlock, Set V(R)), :mod:`.farm` FARM-1 (the
receiving end) and :mod:`.fop` FOP-1 (the sending end), each with its state table
as data. Their runtime over links is :mod:`linkstack.runtime.cop1_link`."""
