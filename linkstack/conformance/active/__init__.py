"""The active conformance suite: crafted units sent to a live endpoint, judged from what
comes back. :mod:`.runner` the sans-I/O machinery, :mod:`.cases` the cases (generators
of steps), :mod:`.udp` the sockets and the run, :mod:`.report` text and JUnit,
:mod:`.stub` a spacecraft that accepts everything (which must fail it), :mod:`.sdls` the
tester's SDLS for a spacecraft that runs it on its TC channel (the ``SDLS-ACT-*`` cases)."""
