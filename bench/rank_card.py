"""Time to draw one rank card PNG, and drawing inline in the event loop against drawing in
worker threads (`anyio.to_thread`: its default 40 threads, and `RENDER_THREADS` as the route
does):

    uv run --frozen python -m bench.rank_card --runs 200 --concurrent 32

Prints the median and 99th percentile (and the median CPU time) of `render` for a card with initials, with an avatar,
with a 300-character name and with an Arabic name; then, for `--concurrent` cards asked at
once, the wall time and how late the event loop's timers fire meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
from PIL import Image

from wee5_gateway.web.rank_card import RENDER_THREADS, Avatar, Picture, decode_avatar, render


def pictures() -> dict[str, Picture]:
    photo = io.BytesIO()
    Image.new("RGB", (512, 512), (200, 40, 90)).save(photo, format="PNG")
    avatar = Avatar(decode_avatar(photo.getvalue()), "bench")
    base = Picture(
        user_id="user_bench",
        name="Ada Lovelace",
        rank=12,
        level=27,
        xp_into_level=1_234,
        xp_for_next_level=2_980,
        progress=1_234 / 2_980,
        badges=tuple((f"badge_{n}", name) for n, name in enumerate(["Early", "Helper", "Top"])),
        avatar=None,
    )
    return {
        "initials": base,
        "avatar": Picture(**{**base.__dict__, "avatar": avatar}),
        "300-char name": Picture(**{**base.__dict__, "name": "W" * 300}),
        "arabic name": Picture(**{**base.__dict__, "name": "محمد بن موسى الخوارزمي " * 4}),
    }


def time_render(picture: Picture, runs: int) -> tuple[float, float, float]:
    """Median and 99th percentile wall time, and median CPU time, of one render (ms). The CPU
    time holds still on a busy machine, where the wall time waits for a core."""
    took, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        render(picture)
        took.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return statistics.median(took), statistics.quantiles(took, n=100)[98], statistics.median(cpu)


async def concurrent(
    draw: Callable[[Picture], Awaitable[bytes]], picture: Picture, n: int
) -> tuple[float, float]:
    """Wall time of `n` draws at once, and how late, at worst, a 1 ms timer of the event
    loop fired meanwhile (what every other request on this worker waits): both in ms."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append(time.perf_counter() - before - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await asyncio.gather(*(draw(picture) for _ in range(n)))
    wall = time.perf_counter() - start
    done.set()
    await ticker
    return wall * 1000, max(lateness) * 1000


async def main(runs: int, n: int) -> None:
    cards = pictures()
    for label, picture in cards.items():
        render(picture)  # warm up
        median, p99, cpu = time_render(picture, runs)
        print(
            f"render {label:14} median {median:6.2f} ms  p99 {p99:6.2f} ms  "
            f"cpu median {cpu:6.2f} ms  ({runs} runs)"
        )
    limiter = anyio.CapacityLimiter(RENDER_THREADS)

    async def inline(picture: Picture) -> bytes:
        await asyncio.sleep(0)
        return render(picture)

    async def threads(picture: Picture) -> bytes:  # anyio's default: up to 40 threads
        return await anyio.to_thread.run_sync(render, picture)

    async def few_threads(picture: Picture) -> bytes:  # as the route does
        return await anyio.to_thread.run_sync(render, picture, limiter=limiter)

    ways = (
        ("inline", inline),
        ("to_thread (40)", threads),
        (f"to_thread ({RENDER_THREADS})", few_threads),
    )
    for label, draw in ways:
        wall, late = await concurrent(draw, cards["avatar"], n)
        print(f"{n} at once, {label:15} wall {wall:7.1f} ms  loop late by up to {late:6.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=32)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.concurrent))
