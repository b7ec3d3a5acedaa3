"""``linkstack bench sdls``: what it times is real SDLS work on valid frames, and its
table says the X-band rate and the target. Speed is never asserted here."""

from __future__ import annotations

import io

from linkstack.ccsds.sdls import SaCounters
from linkstack.tools.bench import sdls
from linkstack.tools.bench.timing import Result


def test_the_bench_frames_are_protected_and_processed_back():
    tx, rx = sdls.tm_link(), sdls.tm_link()
    for sa in (sdls.AEAD, sdls.AUTH):
        plain = sdls.plain_frames(tx, sa, 3)
        for p in plain:
            protected = tx.apply(p, sa.spi)
            assert len(protected) == sdls.FRAME_LEN
            assert rx.process(protected) == (sa.spi, p)
            # as received: the same frame, its FECF left for the receiver told it was checked
            rx.set_receive_counters(
                sa.spi,
                SaCounters(
                    *(
                        c - 1 if c else 0
                        for c in (rx.receive_counters(sa.spi).iv, rx.receive_counters(sa.spi).sn)
                    )
                ),
            )
            spi, bare = rx.process(protected, plain_fecf=False)
            assert (spi, bare[:-2], bare[-2:]) == (sa.spi, p[:-2], b"\x00\x00")
        assert rx.receive_counters(sa.spi) == SaCounters(iv=3 if sa.iv_len else 0, sn=3)
    results = sdls.cases(sdls.AEAD, "tm aead", count=5, repeat=2)
    assert [(r.case, r.units, r.octets, r.runs) for r in results] == [
        ("tm aead apply", 5, 5 * 1115, 2),
        ("tm aead process", 5, 5 * 1115, 2),
        ("tm aead process, as received", 5, 5 * 1115, 2),
    ]


def test_the_table_sets_each_case_against_x_band_and_the_target():
    out = io.StringIO()
    results = [Result("tm aead apply", 10, 11150, [1e-4]), Result("part: x", 1, 1, [1.0])]
    sdls.print_results(results, out)
    text = out.getvalue()
    assert "1115-octet TM frames" in text and "median of N runs" in text
    assert "tm aead apply: 3.0 x X-band's 37.5 MB/s; below the 150 MB/s target" in text
    assert "part: x:" not in text
