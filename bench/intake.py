"""`make bench` (intake): how many activities per second the API-key intake records, in
batches (`POST …/activities/batch`, 1,000 a request) and one at a time (`POST …/activities`),
measured with wrk (a compiled load generator, in its own process).

Starts the platform the way `make up` does, in a database, Redis prefix and NATS prefix of its
own, with no cooldown (every activity earns) and an activity rate limit out of reach (the
intake is measured, not its limit). A platform admin creates an API key with
`activities:write` for a community of each case; wrk posts activities with idempotency keys
no other request uses, spread over 2,000 members (single intake first: the batch run leaves
events that rewards and the outbox relay work through for a while). Afterwards xp's own count
of the community's activities is compared with what wrk saw acknowledged (2xx × activities per
request): fewer is a lost activity, more than the requests still in flight when wrk stopped
could add is one counted twice; either fails the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import httpx

from bench import wrk
from bench.environment import RUN, bench_env, drop_database, reset_database
from tests.support.gateway import bearer
from tests.support.stack import start_stack, stop_stack
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.grpc import channel

BATCH_SIZE = 1000
MEMBERS = 2000
# Batches in flight at once. xp records a batch as a transaction per writer; a few in flight
# keep it busy, more only queue (32 batches of 1,000 wait past the 5 s gRPC deadline: 504s).
BATCH_CONNECTIONS = 4


def _intake(community_id: str, base_url: str) -> str:
    return f"{base_url}/api/v1/communities/{community_id}/activities"


def batch_intake(
    base_url: str,
    community_id: str,
    api_key: str,
    *,
    connections: int,
    seconds: int,
    size: int = BATCH_SIZE,
) -> wrk.WrkRun:
    """wrk posting batches of `size` activities, at most `BATCH_CONNECTIONS` at once whatever
    `connections` says; activities per second = rate × `size`."""
    connections = min(connections, BATCH_CONNECTIONS)
    return wrk.run(
        f"batch intake ({size} a request, {connections} at once)",
        f"{_intake(community_id, base_url)}/batch",
        connections=connections,
        seconds=seconds,
        headers={"X-API-Key": api_key},
        script=wrk.LUA / "activities_batch.lua",
        # A fresh key prefix per run: a second run on the same community records anew.
        script_args=[str(size), str(MEMBERS), uuid.uuid4().hex[:8]],
    )


def single_intake(
    base_url: str, community_id: str, api_key: str, *, connections: int, seconds: int
) -> wrk.WrkRun:
    """wrk posting one activity per request."""
    return wrk.run(
        "single intake (1 per request)",
        _intake(community_id, base_url),
        connections=connections,
        seconds=seconds,
        headers={"X-API-Key": api_key},
        script=wrk.LUA / "activity.lua",
        script_args=[str(MEMBERS), uuid.uuid4().hex[:8]],
    )


async def create_intake_key(base_url: str, community_id: str, admin: dict[str, str]) -> str:
    """An API key with activities:write for the community, created by a platform admin
    (`admin`: their Authorization header) through the API."""
    async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=10) as http:
        created = await http.post(
            f"/api/v1/communities/{community_id}/api-keys",
            json={"name": "bench intake", "scopes": ["activities:write"]},
        )
    if created.status_code != 201:
        raise SystemExit(
            f"bench: creating an API key answered {created.status_code}: {created.text}"
        )
    return str(created.json()["key"])


async def recorded_activities(xp_addr: str, community_id: str) -> int:
    """The community's activities as xp counts them (its analytics: every recorded activity,
    awarded or not, over the last 30 days)."""
    async with channel(xp_addr) as chan:
        xp = xp_pb2_grpc.XpServiceStub(chan)
        reply = await xp.GetAnalytics(xp_pb2.GetAnalyticsRequest(community_id=community_id))
    return sum(day.activities for day in reply.days)


async def settled_count(xp_addr: str, community_id: str) -> int:
    """The recorded count once it stops moving (requests in flight when wrk stopped finish)."""
    count = await recorded_activities(xp_addr, community_id)
    for _ in range(20):
        await asyncio.sleep(0.5)
        again = await recorded_activities(xp_addr, community_id)
        if again == count:
            return count
        count = again
    return count


def check_exactly_once(run: wrk.WrkRun, per_request: int, connections: int, recorded: int) -> bool:
    """Prints acknowledged against recorded. False when an acknowledged activity is missing
    (lost), or when more are recorded than could have been sent (counted twice): requests in
    flight when wrk stopped (one per connection), timed out, or answered 504 after xp had
    begun may be recorded (in whole or in part) without being acknowledged."""
    acknowledged = (run.requests - run.non_2xx) * per_request
    unanswered = (connections + run.errors) * per_request
    if recorded == acknowledged:
        verdict = "equal: nothing acknowledged was lost"
    elif acknowledged < recorded <= acknowledged + unanswered:
        verdict = f"{recorded - acknowledged} more, of requests still in flight when wrk stopped"
    elif recorded < acknowledged:
        verdict = f"LOST {acknowledged - recorded} acknowledged activities"
    else:
        verdict = f"{recorded - acknowledged - unanswered} MORE than could have been sent"
    print(f"  acknowledged {acknowledged} activities, xp recorded {recorded}: {verdict}")
    return acknowledged <= recorded <= acknowledged + unanswered


async def main(connections: int, seconds: int, single_connections: int) -> None:
    env = bench_env()  # the activity rate limit out of reach, too
    await reset_database(env["WEE5_DATABASE_URL"])
    stack = start_stack(env, Path("/tmp"), WEE5_XP_COOLDOWN_SECONDS="0")
    xp_addr = stack.env["WEE5_XP_ADDR"]
    admin = bearer(GatewaySettings(jwt_secret=env["WEE5_JWT_SECRET"]), platform_admin=True)
    ok = True
    try:
        print(f"WEE5 intake bench: {MEMBERS} members, no cooldown, {seconds} s each")
        batch_community, single_community = f"exp_batch{RUN}", f"exp_single{RUN}"
        started = time.perf_counter()
        # Single first: the batch run leaves events behind that rewards and the outbox relay
        # are still working through for a while.
        key = await create_intake_key(stack.base_url, single_community, admin)
        single = single_intake(
            stack.base_url,
            single_community,
            key,
            connections=single_connections,
            seconds=seconds,
        )
        print(single.line("act/s"), f"  ({single_connections} connections)")
        recorded = await settled_count(xp_addr, single_community)
        ok &= check_exactly_once(single, 1, single_connections, recorded)
        key = await create_intake_key(stack.base_url, batch_community, admin)
        batch = batch_intake(
            stack.base_url, batch_community, key, connections=connections, seconds=seconds
        )
        print(batch.line("act/s", BATCH_SIZE))
        recorded = await settled_count(xp_addr, batch_community)
        ok &= check_exactly_once(batch, BATCH_SIZE, min(connections, BATCH_CONNECTIONS), recorded)
        print(
            f"batch / single: {batch.rate * BATCH_SIZE / single.rate:.1f}x activities per second"
            f" (bench took {time.perf_counter() - started:.0f} s)"
        )
    finally:
        stop_stack(stack)
        await drop_database(env["WEE5_DATABASE_URL"])
    if not ok:
        raise SystemExit("bench: recorded activities do not match what was acknowledged")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4, help="for the batch intake")
    parser.add_argument("--single-connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.connections, args.seconds, args.single_connections))
