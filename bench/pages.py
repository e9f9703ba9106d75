"""`make bench` (pages): how fast the leaderboard page answers as HTML, measured with wrk (a
compiled load generator, in its own process) against the gateway's own `/healthz` in the same
run.

Starts the platform the way `make up` does, in a database, Redis prefix and NATS prefix of its
own, imports a community of `--members` members through xp's ImportMembers, then runs wrk with
`--connections` concurrent readers for `--seconds` on `/healthz` and on the board page
(`/app/experiences/{id}/leaderboard`, the first 100 members, signed in), and prints
requests per second, p50/p99 latency and the ratio between the two.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httpx

from bench import wrk
from bench.environment import RUN, bench_env, drop_database, reset_database
from tests.support.gateway import bearer
from tests.support.stack import start_stack, stop_stack
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.grpc import channel


async def import_members(xp_addr: str, community_id: str, members: int) -> None:
    async with channel(xp_addr) as chan:
        xp = xp_pb2_grpc.XpServiceStub(chan)
        for start in range(0, members, 50):
            await xp.ImportMembers(
                xp_pb2.ImportMembersRequest(
                    community_id=community_id,
                    source=xp_pb2.SOURCE_MEE6,
                    members=[
                        xp_pb2.ImportedMember(user_id=f"user_{i}", xp=(i * 7919) % 50_000)
                        for i in range(start, min(start + 50, members))
                    ],
                )
            )


async def main(members: int, connections: int, seconds: int) -> None:
    env = bench_env()
    await reset_database(env["WEE5_DATABASE_URL"])
    stack = start_stack(env, Path("/tmp"))
    community = f"exp_pages{RUN}"
    try:
        await import_members(stack.env["WEE5_XP_ADDR"], community, members)
        signed_in = bearer(GatewaySettings(jwt_secret=env["WEE5_JWT_SECRET"]), platform_admin=True)
        board = f"{stack.base_url}/app/experiences/{community}/leaderboard"
        async with httpx.AsyncClient(headers=signed_in, timeout=10) as http:
            page = await http.get(board)
        if page.status_code != 200 or "user_" not in page.text:
            raise SystemExit(
                f"bench: the board page answered {page.status_code}: {page.text[:300]}"
            )
        print(
            f"WEE5 page bench: board of {members} members, {connections} readers, {seconds} s each"
        )
        health = wrk.run(
            "gateway /healthz",
            f"{stack.base_url}/healthz",
            connections=connections,
            seconds=seconds,
        )
        print(health.line())
        html = wrk.run(
            "board page (HTML, 100 rows)",
            board,
            connections=connections,
            seconds=seconds,
            headers=signed_in,
        )
        print(html.line())
        print(f"ratio board page / healthz throughput: {html.rate / health.rate:.2f}x")
        verdict = "under" if html.p99_ms < 100 else "OVER"
        print(f"board page p99 {html.p99_ms:.1f} ms: {verdict} the 100 ms goal")
    finally:
        stop_stack(stack)
        await drop_database(env["WEE5_DATABASE_URL"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.members, args.connections, args.seconds))
