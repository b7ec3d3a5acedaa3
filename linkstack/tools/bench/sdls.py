"""``linkstack bench sdls``: the cost of SDLS on 1115-octet TM frames, one core.

Cases, each over the same frames (1115 octets protected, with OCF and FECF):
- aead apply / process: AES-256-GCM authenticated encryption with a 4-octet sequence
  number and a 16-octet MAC (linkstack's own links' SA), the whole of
  ``FrameSecurity.apply`` and ``process`` (the security header, the FECF, the counters);
- aead process, as received: ``process(plain_fecf=False)``, what linkstack's TM and
  AOS receivers do (the protected frame's FECF checked, the plain frame's not
  computed: the receiver is told it was checked);
- auth apply / process: AES-CMAC authentication only, the same way;
- and, to say where the time goes, the parts alone: AES-256-GCM over the data field
  (pyca/cryptography, OpenSSL) and one FECF (CRC-16, crcmod) over the frame. ``apply``
  computes one FECF, ``process`` two: it checks the protected frame's, then makes the
  plain frame's.

MB/s counts protected frame octets over the median of N runs. The figures are set
against the X-band downlink's 300 Mbit/s (37.5 MB/s) and the issue's target of
150 MB/s each way.
"""

from __future__ import annotations

import random
import sys
from typing import TextIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SaCounters, SecurityAssociation
from linkstack.ccsds.tm import TmFrame
from linkstack.tools.bench.timing import Result, print_table, time_runs

FRAME_LEN = 1115
X_BAND_MB_S = 300e6 / 8 / 1e6  # 37.5
TARGET_MB_S = 150.0
_WINDOW = 1 << 30  # the bench's frames are processed again run after run
AEAD = SecurityAssociation(6, "aead", ecs="AES256_GCM", ekid=1, sn_len=4, window=_WINDOW)
AUTH = SecurityAssociation(7, "auth", acs="CMAC_AES256", akid=2, iv_len=0, sn_len=4, window=_WINDOW)


def tm_link() -> FrameSecurity:
    """A TM link with the bench's two SAs and fixed keys (the same at each call)."""
    rng = random.Random(15)
    keys = Keyring.from_mapping({1: rng.randbytes(32), 2: rng.randbytes(32)})
    return FrameSecurity("tm", [AEAD, AUTH], keys, fecf=True, ocf=True, frame_length=FRAME_LEN)


def plain_frames(fs: FrameSecurity, sa: SecurityAssociation, count: int) -> list[bytes]:
    """``count`` plain TM frames of the length ``sa`` leaves on ``fs``."""
    rng = random.Random(sa.spi)
    size = fs.plain_length(sa.spi) - 6 - 4 - 2
    return [
        TmFrame(0x1A5, 1, i & 0xFF, i & 0xFF, rng.randbytes(size), ocf=bytes(4)).pack()
        for i in range(count)
    ]


def cases(sa: SecurityAssociation, name: str, count: int, repeat: int) -> list[Result]:
    """The timed cases of ``sa``: apply, process, process as received."""
    tx, rx = tm_link(), tm_link()
    plain = plain_frames(tx, sa, count)
    protected = [tx.apply(p, sa.spi) for p in plain]
    spi = sa.spi

    def apply_all() -> None:
        apply = tx.apply
        for p in plain:
            apply(p, spi)

    def process_all() -> None:
        rx.set_receive_counters(spi, SaCounters())  # the same frames, run after run
        process = rx.process
        for f in protected:
            process(f)

    def received_all() -> None:
        rx.set_receive_counters(spi, SaCounters())
        process = rx.process
        for f in protected:
            process(f, plain_fecf=False)

    octets = count * FRAME_LEN
    return [
        Result(f"{name} apply", count, octets, time_runs(apply_all, repeat, warmup=1)),
        Result(f"{name} process", count, octets, time_runs(process_all, repeat, warmup=1)),
        Result(
            f"{name} process, as received",
            count,
            octets,
            time_runs(received_all, repeat, warmup=1),
        ),
    ]


def _parts(count: int, repeat: int) -> list[Result]:
    rng = random.Random(7)
    gcm = AESGCM(rng.randbytes(32))
    iv, aad = rng.randbytes(12), rng.randbytes(22)
    data = [rng.randbytes(FRAME_LEN - 22 - 16 - 6) for _ in range(count)]
    frames = [rng.randbytes(FRAME_LEN) for _ in range(count)]

    def gcm_all() -> None:
        for d in data:
            gcm.encrypt(iv, d, aad)

    def crc_all() -> None:
        for f in frames:
            crc16_ccitt(f)

    octets = count * FRAME_LEN
    return [
        Result("part: AES-256-GCM alone", count, octets, time_runs(gcm_all, repeat, warmup=1)),
        Result("part: one FECF (crcmod)", count, octets, time_runs(crc_all, repeat, warmup=1)),
    ]


def run(quick: bool = False) -> list[Result]:
    count = 2_000 if quick else 20_000
    repeat = 5  # runs a case; the median is reported
    return [
        *cases(AEAD, "tm aead", count, repeat),
        *cases(AUTH, "tm auth", count, repeat),
        *_parts(count, repeat),
    ]


def print_results(results: list[Result], out: TextIO = sys.stdout) -> None:
    print_table(f"linkstack bench sdls ({FRAME_LEN}-octet TM frames)", results, "frames", out)
    for r in results:
        if r.case.startswith("part"):
            continue
        verdict = "meets" if r.mb_per_s >= TARGET_MB_S else "below"
        print(
            f"  {r.case}: {r.mb_per_s / X_BAND_MB_S:.1f} x X-band's {X_BAND_MB_S} MB/s; "
            f"{verdict} the {TARGET_MB_S:.0f} MB/s target",
            file=out,
        )
