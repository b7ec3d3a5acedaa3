"""The fuzzing loop, the checks every target shares, and the table ``linkstack fuzz`` prints.

A :class:`Target` names a decoder, makes valid units for it and says what a clean
refusal of bad input is; :func:`fuzz_target` feeds it random and damaged units
(:func:`mutate`) and reports every outcome that breaks the rules of the package
docstring, with the input in hex to reproduce it.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import PRIMARY_HEADER_LEN, parse_primary_header
from linkstack.errors import DecodeError

Decoder = Callable[[bytes], object]
T = TypeVar("T")


@dataclass
class Target:
    name: str
    valid: Callable[[random.Random], bytes]  # a valid unit to mutate
    make: Callable[[], Decoder]  # a fresh decoder (receivers keep state across inputs)
    strict: bool  # True: DecodeError is allowed; False: nothing may be raised
    has_fecf: bool = False
    max_random_len: int = 1200
    refusal: type[Exception] = DecodeError  # what a clean refusal of bad input raises
    # makes a damaged unit pass its checksum again, so that the damage reaches the
    # parser behind it (like recomputing the FECF of a frame)
    fix: Callable[[bytes], bytes] | None = None


@dataclass
class Report:
    target: str
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class FuzzCheckError(AssertionError):
    pass


# -- the checks targets share ----------------------------------------------------------------------


def check_packet(pkt: bytes) -> None:
    """A packet handed out by a receiver is one Space Packet, its length field right."""
    h = parse_primary_header(pkt)
    if h.packet_length != len(pkt):
        raise FuzzCheckError(
            f"emitted packet of {len(pkt)} octets whose header says {h.packet_length}"
        )


def strict(fn: Callable[[bytes], T], reencode: Callable[[T], bytes] | None) -> Decoder:
    """A strict decoder whose every acceptance must re-encode to the input octets."""

    def decode(buf: bytes) -> object:
        out = fn(buf)
        if reencode is not None and reencode(out) != buf:
            raise FuzzCheckError("accepted input does not re-encode to the same octets")
        return out

    return decode


# -- the loop --------------------------------------------------------------------------------------


def mutate(rng: random.Random, target: Target) -> bytes:
    """One fuzz input: random octets, or a valid unit damaged in one of several ways."""
    choice = rng.randrange(6)
    if choice == 0:
        return rng.randbytes(rng.randrange(target.max_random_len + 1))
    unit = bytearray(target.valid(rng))
    if choice == 1 and unit:  # bit flips
        for _ in range(rng.randrange(1, 9)):
            unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
    elif choice == 2:  # truncation
        del unit[rng.randrange(len(unit) + 1) :]
    elif choice == 3:  # extra octets
        unit += rng.randbytes(rng.randrange(1, 16))
    elif choice == 4 and unit:  # random header octets on a valid body
        for i in range(min(len(unit), PRIMARY_HEADER_LEN + 2)):
            if rng.random() < 0.5:
                unit[i] = rng.randrange(256)
    elif unit:  # corrupted content that still passes the CRC
        for _ in range(rng.randrange(1, 5)):
            unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
    if target.has_fecf and choice in (4, 5) and len(unit) > 2:
        unit[-2:] = crc16_ccitt(bytes(unit[:-2])).to_bytes(2, "big")
    if target.fix is not None and choice in (1, 4, 5):
        return target.fix(bytes(unit))
    return bytes(unit)


def fuzz_target(target: Target, iterations: int, seed: int = 0, max_failures: int = 5) -> Report:
    rng = random.Random(f"{seed}:{target.name}")
    report = Report(target.name)
    decode = target.make()
    t0 = time.perf_counter()
    for _ in range(iterations):
        buf = mutate(rng, target)
        report.inputs += 1
        try:
            decode(buf)
            report.accepted += 1
        except target.refusal:
            if not target.strict:
                report.failures.append(f"receiver raised {target.refusal.__name__} on {buf.hex()}")
            report.refused += 1
        except Exception as exc:  # the point of fuzzing: anything else is a bug
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            report.failures.append(f"{tb} on input {buf.hex()}")
        if len(report.failures) >= max_failures:
            break
    report.seconds = time.perf_counter() - t0
    return report


def run(
    targets: Sequence[Target],
    iterations: int,
    seed: int = 0,
    only: list[str] | None = None,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Fuzz ``targets`` in turn (those whose name starts with one of ``only``)."""
    reports = []
    for target in targets:
        if only and not any(target.name.startswith(o) for o in only):
            continue
        report = fuzz_target(target, iterations, seed)
        reports.append(report)
        if progress:
            progress(report)
    return reports


# -- what `linkstack fuzz` prints ------------------------------------------------------------------


def main(targets: Sequence[Target], iterations: int, seed: int, only: list[str] | None) -> int:
    """Fuzz and print a line per target, then the failures; 1 if any, 2 for an unknown
    target prefix."""
    names = [t.name for t in targets]
    for prefix in only or ():
        if not any(n.startswith(prefix) for n in names):
            print(
                f"linkstack fuzz: no target starts with {prefix!r}; targets: {', '.join(names)}",
                file=sys.stderr,
            )
            return 2
    print(f"# fuzzing {iterations:,} inputs per target, seed {seed}")
    print(f"  {'target':<24}{'inputs':>10}{'accepted':>10}{'refused':>10}{'seconds':>9}  result")

    def progress(r: Report) -> None:
        verdict = "ok" if not r.failures else f"{len(r.failures)} FAILURES"
        print(
            f"  {r.target:<24}{r.inputs:>10,}{r.accepted:>10,}{r.refused:>10,}"
            f"{r.seconds:>9.1f}  {verdict}",
            flush=True,
        )

    reports = run(targets, iterations, seed, only, progress)
    failed = [r for r in reports if r.failures]
    for r in failed:
        print(f"\n{r.target}:")
        for f in r.failures:
            print(f"  {f}")
    return 1 if failed else 0
