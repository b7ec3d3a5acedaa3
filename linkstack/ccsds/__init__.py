"""The CCSDS codecs and protocol machines, sans-I/O: one module per standard.

Bytes or dataclasses in, bytes, dataclasses or actions out; no sockets, no asyncio,
no clock (time is a parameter). Nothing here imports the runtime
(:mod:`linkstack.runtime`), the daemons, capture or the tools (DESIGN.md, layers).

- :mod:`.spp` Space Packets (133.0-B-2), :mod:`.cuc` the CUC time code (301.0-B-4)
  and :mod:`.timescale` (TAI/UTC);
- :mod:`.tm` (132.0-B-3), :mod:`.tc` (232.0-B-4), :mod:`.aos` (732.0-B-4),
  :mod:`.uslp` (732.1-B-2) with :mod:`.uslp_channels` (its MAPs, VCs and receiver),
  :mod:`.packet_zone` shared by TM, AOS and USLP, and :mod:`.crc` the FECF;
- :mod:`.coding` synchronization and channel coding (131.0-B-4, 231.0-B-4);
- :mod:`.cop1` the Communications Operation Procedure-1 (232.1-B-2), and
  :mod:`.uslp_cop1` its frames in USLP frames;
- :mod:`.sdls` Space Data Link Security (355.0-B-2) on TC, TM, AOS and USLP frames, with
  :mod:`.sdls_layout`, :mod:`.sdls_suites` (over pyca/cryptography) and :mod:`.sdls_keys`.
"""
