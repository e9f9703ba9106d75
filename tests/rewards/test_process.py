"""The real rewards process (`python -m wee5_rewards`) as a child process: a level-up from
JetStream becomes one Whop grant, even when the event comes twice and the process is killed
(SIGKILL) while Whop is applying the days, and a new process takes over after the lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import XpMemberships, eventually
from tests.support.whop_api import FakeWhop
from wee5.events.v1 import events_pb2
from wee5_kit.events import EventBus, new_meta
from wee5_rewards.models import Reward, RewardAttempt

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_rewards(
    test_env: dict[str, str],
    whop: FakeWhop,
    xp: XpMemberships,
    log: Path,
    started: list[subprocess.Popen[bytes]],
    **extra: str,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **test_env,
        "WEE5_LOG_LEVEL": "INFO",
        "WEE5_REWARDS_ADDR": f"127.0.0.1:{free_port()}",
        "WEE5_XP_ADDR": xp.address,
        "WEE5_WHOP_API_URL": whop.base_url,
        "WEE5_WHOP_API_KEY": whop.api_key,
        # The held call is cut by the kill (right after Whop applied it), long before this
        # deadline; the lease must outlast an attempt's deadlines (3 x 2 s + 1 s).
        "WEE5_WHOP_CALL_TIMEOUT_SECONDS": "2",
        "WEE5_GRPC_DEADLINE_SECONDS": "1",
        "WEE5_REWARD_LEASE_SECONDS": "7.5",
        "WEE5_REWARD_BACKOFF_BASE_SECONDS": "0.1",
        "WEE5_REWARD_BACKOFF_MAX_SECONDS": "0.5",
        "WEE5_REWARD_POLL_SECONDS": "0.2",
        "WEE5_MEMBERSHIP_RECHECK_SECONDS": "3600",
        **extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wee5_rewards", "serve"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started.append(process)
    return process


async def test_rewards_process_killed_mid_apply_and_restarted_grants_once(
    test_env: dict[str, str],
    database_url: str,
    bus: EventBus,
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    community_id: str,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    membership_id = whop.add_membership(company_id="biz_kill")
    await memberships_xp.link(community_id, "u1", membership_id, "biz_kill")
    end_before = whop.period_end(membership_id)
    whop.script["add_free_days"] = ["hold"]  # Whop applies the days, then never answers
    log = tmp_path / "rewards.log"

    first = start_rewards(test_env, whop, memberships_xp, log, processes)
    await bus.ensure_stream("xp")
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="u1", from_level=4, to_level=5, total_xp=800
    )
    for _ in range(2):  # the same event delivered twice
        await bus.publish(
            bus.subject("xp.level_up"), event.SerializeToString(), event.meta.event_id
        )

    async with asyncio.timeout(60):
        await whop.applied.wait()

    async def reward() -> Reward | None:
        async with sessionmaker() as session:
            rows = list(
                await session.scalars(select(Reward).where(Reward.community_id == community_id))
            )
        assert len(rows) <= 1
        return rows[0] if rows else None

    applying = await reward()
    assert applying is not None
    assert applying.status == "applying"
    os.kill(first.pid, signal.SIGKILL)  # mid-apply: Whop applied, nothing recorded
    first.wait(10)

    second = start_rewards(test_env, whop, memberships_xp, log, processes)

    async def granted() -> bool:
        row = await reward()
        return row is not None and row.status == "granted"

    try:
        await eventually(granted, within=60)
    except AssertionError:
        raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
    second.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        second.wait(15)

    assert len(whop.applications("add_free_days")) == 1
    assert whop.period_end(membership_id) - end_before == timedelta(days=3)
    row = await reward()
    assert row is not None
    async with sessionmaker() as session:
        attempts = [
            (a.number, a.outcome)
            for a in await session.scalars(
                select(RewardAttempt)
                .where(RewardAttempt.reward_id == row.id)
                .order_by(RewardAttempt.number)
            )
        ]
    # The killed process's attempt was found applied by the next one, which added nothing.
    assert attempts == [(1, "applied"), (2, "already_applied")]
