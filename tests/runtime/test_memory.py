"""What a long run holds: once a query is settled, nothing of it stays in the ground
segment, its trace or the satellites' COP-1 ends (an emulation's client keeps every
timeline, for its report; a daemon's is bounded, tests/payloads/test_client.py)."""

import asyncio

from linkstack.runtime import clock as clk
from linkstack.runtime.emulation import Emulation, EmulationConfig
from payloads.client import ClientConfig
from payloads.messages import Params
from payloads.service import ServiceConfig

BURST_T_S = 10_935.0  # CS-06 and CS-07 in view (as in test_dispatch.py)
QUERIES = 40
AFTER_S = 600.0  # long enough for every repeated copy of an answer to come down
# answers repeated well before the ground's ack is up: late copies, after the query is settled
LATE_COPIES = EmulationConfig(
    service=ServiceConfig(repeat_s=1.0), client=ClientConfig(ack_delay_s=10.0)
)


def test_settled_queries_leave_nothing_behind_in_the_ground_or_on_board(tiny):
    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, LATE_COPIES, backend=tiny)
        async with emu:
            await clock.sleep_until(BURST_T_S)
            pendings = [
                emu.client.submit(f"Query {k}?", Params(max_new_tokens=2, seed=k))
                for k in range(QUERIES)
            ]
            results = await asyncio.gather(*(p.result() for p in pendings))
            await clock.sleep(AFTER_S)  # late copies of the answers come down, acks go up
            held = emu.mcc.held()
            delivered = sum(len(s.spacecraft.delivered) for s in emu.satellites.values())
            taken = sum(s.spacecraft.delivered_count for s in emu.satellites.values())
        return results, held, delivered, taken, emu

    results, held, delivered, taken, emu = clk.run(main)
    assert len({answer.id for answer, _ in results}) == QUERIES
    assert all(timeline.complete for _, timeline in results)
    assert emu.client.stats["duplicates"] > 0  # late copies did come down meanwhile
    assert held == {
        "queries": 0,
        "queries_with_transfers": 0,
        "queue": 0,
        "trace_messages": 0,
        "trace_open_hops": 0,
        "trace_copies": 0,
        "trace_forgotten": 2 * QUERIES,
    }
    # the satellites took every packet they were sent (queries, acks) and kept none
    assert taken >= QUERIES and delivered == 0
    # the emulation's client keeps every query and timeline: its report reads them all
    assert emu.client.held()["timelines"] == QUERIES == len(emu.client.pending)
