"""xp's metrics as Prometheus scrapes them: the outbox gauge grows while NATS is stopped and
falls back to nothing once it is back; cooldown skips and group commits are counted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from tests.conftest import create_migrated_database, drop_database, free_port
from tests.support.faults import eventually, own_nats
from tests.support.metrics import Samples, in_process_metrics_url, scrape, value
from tests.xp.conftest import activity, xp_rpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

__all__ = ["xp_rpc"]  # the fixture these tests use


def waiting(samples: Samples) -> float:
    return value(samples, "wee5_outbox_waiting_rows", component="xp")


async def test_stopping_nats_grows_the_outbox_gauge_until_it_is_back(
    database_url: str, community_id: str, tmp_path: Path
) -> None:
    # A database of its own: the run's other xp servers relay the shared outbox to the shared
    # NATS, and would publish these rows while this server's NATS is away.
    shared = make_url(database_url)
    own_url = shared.set(database=f"{shared.database}_outbox").render_as_string(hide_password=False)
    await create_migrated_database(own_url)
    nats = own_nats(tmp_path)
    nats.start()
    address = f"127.0.0.1:{free_port()}"
    server = await build(
        XpSettings(
            database_url=own_url,
            xp_addr=address,
            nats_url=f"nats://127.0.0.1:{nats.port}",
            xp_cooldown_seconds=0,
        )
    )
    await server.start()
    url = in_process_metrics_url()
    try:
        async with channel(address) as chan:
            xp = xp_pb2_grpc.XpServiceStub(chan)
            await xp.RecordActivity(activity(community_id, "u0"))

            async def drained() -> bool:
                return waiting(await scrape(url)) == 0

            await eventually(drained)
            nats.stop()
            for n in range(3):
                await xp.RecordActivity(activity(community_id, f"u{n + 1}"))
            three = await scrape(url)
            await xp.RecordActivity(activity(community_id, "u4"))
            four = await scrape(url)
            nats.start()
            await eventually(drained)
    finally:
        await server.stop()
        nats.stop()
        await drop_database(own_url)

    # Each award is an xp.awarded event (and the first of a member a level-up) in the outbox:
    # from none to at least three while NATS is away, more with the fourth, the oldest of
    # them aging, none once it is back.
    assert waiting(three) >= 3
    assert waiting(four) > waiting(three)
    assert value(four, "wee5_outbox_oldest_age_seconds", component="xp") > 0


async def test_cooldown_skips_and_group_commits_are_counted(
    xp_rpc: XpServiceAsyncStub, community_id: str
) -> None:
    url = in_process_metrics_url()
    before = await scrape(url)

    first = await xp_rpc.RecordActivity(activity(community_id, "u1"))
    second = await xp_rpc.RecordActivity(activity(community_id, "u1"))
    after = await scrape(url)

    assert first.outcome == xp_pb2.ACTIVITY_OUTCOME_AWARDED
    assert second.skip_reason == xp_pb2.SKIP_REASON_COOLDOWN
    skips = "wee5_xp_cooldown_skips_total"
    assert value(after, skips) - value(before, skips) == 1
    commits = "wee5_xp_batch_commit_seconds_count"
    committed = value(after, commits, outcome="committed")
    assert committed - value(before, commits, outcome="committed") == 2
    assert (
        value(after, "wee5_xp_batch_activities_sum") - value(before, "wee5_xp_batch_activities_sum")
        == 2
    )
    rpcs = value(after, "wee5_grpc_server_handled_total", grpc_method="RecordActivity")
    assert rpcs - value(before, "wee5_grpc_server_handled_total", grpc_method="RecordActivity") == 2
