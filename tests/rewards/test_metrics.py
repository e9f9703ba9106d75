"""The real rewards process's `/metrics`: a reward whose Whop calls all fail shows as dead in
the rewards gauge, and the failed calls in the Whop latency histogram by outcome."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import free_port
from tests.rewards.conftest import XpMemberships, eventually
from tests.rewards.test_process import processes, start_rewards
from tests.support.metrics import Samples, scrape, value
from tests.support.whop_api import FakeWhop
from wee5.events.v1 import events_pb2
from wee5_kit.events import EventBus, new_meta

__all__ = ["processes"]  # the fixture these tests use


async def test_a_dead_reward_shows_in_the_rewards_gauge(
    test_env: dict[str, str],
    database_url: str,
    bus: EventBus,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    community_id: str,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    membership_id = whop.add_membership(company_id="biz_dead")
    await memberships_xp.link(community_id, "u1", membership_id, "biz_dead")
    whop.down = True  # every call answers 503
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "rewards.log"
    start_rewards(
        test_env,
        whop,
        memberships_xp,
        log,
        processes,
        WEE5_METRICS_PORT=str(port),
        WEE5_METRICS_CACHE_SECONDS="0",
        WEE5_REWARD_MAX_ATTEMPTS="2",
    )
    before: list[Samples] = []

    async def serving() -> bool:
        try:
            before.append(await scrape(url))
        except Exception:
            return False
        return True

    await eventually(serving, within=60)
    dead_before = value(before[0], "wee5_rewards", status="dead")
    await bus.ensure_stream("xp")
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="u1", from_level=4, to_level=5, total_xp=800
    )
    await bus.publish(bus.subject("xp.level_up"), event.SerializeToString(), event.meta.event_id)

    after: list[Samples] = []

    async def one_more_dead() -> bool:
        after.append(await scrape(url))
        return value(after[-1], "wee5_rewards", status="dead") == dead_before + 1

    try:
        await eventually(one_more_dead, within=60)
    except AssertionError:
        raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
    samples = after[-1]
    # Every open status is a series (0 when no reward is in it), granted never is.
    statuses = {dict(labels)["status"] for name, labels in samples if name == "wee5_rewards"}
    assert statuses == {"pending", "applying", "failed", "dead", "waiting", "waiting_membership"}
    assert value(samples, "wee5_whop_call_seconds_count", outcome="server_error") >= 2
    assert value(samples, "wee5_whop_call_seconds_count", outcome="ok") == 0
    # The level-up came from JetStream to the process's durable consumer, handled once.
    assert value(samples, "wee5_events_handled_total", outcome="handled") >= 1
    assert any(
        name == "wee5_consumer_pending_messages" and "level_up" in dict(labels)["durable"]
        for name, labels in samples
    )
