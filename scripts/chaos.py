"""`make chaos`: the fault suite's faults for longer, then a mixed soak.

The stack runs as `make up` runs it, on a Redis, a NATS and a database of its own
(tests/support/faults.py). Each fault runs under a stream of signed Whop webhooks redelivered
until acknowledged, and is checked as tests/faults checks it: every delivery counted once, no
answer but 200 (and 503 while the fault lasts), the outbox drained, every level-5 reward once,
the board equal to the ledger. Then the soak: webhooks and reads (board, card) for
`--soak-minutes`, a fault every `--fault-every` seconds in turn, the same checks at the end,
and the RSS of every process at the soak's start and end (a growing RSS is a leak to explain).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.environment import bench_env
from bench.processes import memory_report
from tests.support.faults import (
    BoardReader,
    Fault,
    Platform,
    WebhookStream,
    assert_counted_once_and_settled,
    ctrl_c,
    database_connections_cut,
    nats_down,
    own_platform,
    redis_down,
    service_killed,
    through,
    unexpected_answers,
)

FAULTS: list[tuple[str, Fault]] = [
    ("NATS killed for 60 s", nats_down(60)),
    ("Redis killed for 15 s, back empty", redis_down(15)),
    ("database connections terminated for 15 s", database_connections_cut(15)),
    ("xp killed (SIGKILL)", service_killed("xp")),
    ("rewards killed (SIGKILL)", service_killed("rewards")),
    ("Ctrl-C mid-stream, started again", ctrl_c),
]
# What the soak injects in turn (shorter: it runs many times).
SOAK_FAULTS: list[tuple[str, Fault]] = [
    ("Redis killed for 5 s", redis_down(5)),
    ("database connections terminated for 5 s", database_connections_cut(5)),
    ("xp killed", service_killed("xp")),
    ("NATS killed for 20 s", nats_down(20)),
    ("gateway killed", service_killed("gateway")),
]


async def run_fault(platform: Platform, name: str, fault: Fault) -> bool:
    started = time.monotonic()
    run = await through(platform, fault)
    unexpected = [
        *unexpected_answers(run.stream.replies, run.window),
        *unexpected_answers(run.reads.replies, run.window),
    ]
    if name.startswith("Ctrl-C"):  # refused connections while it is down are expected
        unexpected = [reply for reply in unexpected if isinstance(reply.status, int)]
    settled = await _settled(platform, run.stream)
    ok = not unexpected and settled is None
    print(
        f"{'ok  ' if ok else 'FAIL'} {name}: {len(run.stream.bodies)} deliveries answered "
        f"{_counts(run.stream.statuses())}, reads {_counts(run.reads.statuses())}, ready again "
        f"{run.window.recovered - run.window.end:.1f} s after the fault ended, "
        f"{time.monotonic() - started:.0f} s in all"
        + (f"; unexpected answers: {len(unexpected)}" if unexpected else "")
        + (f"; {settled}" if settled else ""),
        flush=True,
    )
    return ok


def _counts(statuses: Counter[int | str]) -> dict[int | str, int]:
    return dict(sorted(statuses.items(), key=str))


async def _settled(platform: Platform, stream: WebhookStream) -> str | None:
    try:
        await assert_counted_once_and_settled(platform, stream)
    except (AssertionError, TimeoutError) as error:
        return f"not settled: {str(error)[:500] or type(error).__name__}"
    return None


async def soak(platform: Platform, minutes: float, fault_every: float) -> bool:
    print(f"\nsoak: {minutes:g} minutes of webhooks and reads, a fault every {fault_every:g} s")
    _print_memory(platform, "at the soak's start")
    stream = WebhookStream(platform.stack.base_url, "exp_chaossoak")
    reads = BoardReader(platform.stack.base_url, stream.community_id)
    await stream.start()
    await asyncio.sleep(2)
    await reads.start()
    deadline = time.monotonic() + minutes * 60
    faults = itertools.cycle(SOAK_FAULTS)
    while time.monotonic() + fault_every < deadline:
        await asyncio.sleep(fault_every)
        name, fault = next(faults)
        print(f"  {time.strftime('%H:%M:%S')} {name}", flush=True)
        await fault(platform)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    await reads.stop()
    await stream.drain(within=180)
    settled = await _settled(platform, stream)
    server_errors: dict[int | str, int] = {
        s: n for s, n in stream.statuses().items() if isinstance(s, int) and s >= 500
    }
    read_errors: dict[int | str, int] = {
        s: n for s, n in reads.statuses().items() if not (isinstance(s, int) and s < 500)
    }
    print(
        f"soak: {len(stream.bodies)} deliveries, answers {dict(stream.statuses())}; "
        f"reads {_counts(reads.statuses())}"
    )
    print(
        f"soak: 5xx other than 503: {_not_503(server_errors) or 'none'}; "
        f"reads failing: {_not_503(read_errors) or 'none'}; {settled or 'counted once, settled'}"
    )
    _print_memory(platform, "at the soak's end")
    return settled is None and not _not_503(server_errors)


def _not_503(counts: dict[int | str, int]) -> dict[int | str, int]:
    return {status: n for status, n in counts.items() if status != 503}


def _print_memory(platform: Platform, when: str) -> None:
    rows = memory_report(platform.stack.process.pid)
    print(f"RSS {when}: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in rows), flush=True)


async def main(options: argparse.Namespace) -> int:
    env = {**os.environ, **bench_env(), "WEE5_LOG_LEVEL": "INFO"}
    os.environ.update(env)  # the tokens the reads carry are signed with the stack's secret
    with tempfile.TemporaryDirectory(prefix="wee5-chaos-") as tmp:
        async with own_platform(env, Path(tmp)) as platform:
            print(f"stack on {platform.stack.base_url}; logs in {tmp}", flush=True)
            results = [await run_fault(platform, name, fault) for name, fault in FAULTS]
            if options.soak_minutes > 0:
                results.append(await soak(platform, options.soak_minutes, options.fault_every))
    print(f"\nchaos: {sum(results)} of {len(results)} passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument("--fault-every", type=float, default=60)
    raise SystemExit(asyncio.run(main(parser.parse_args())))
