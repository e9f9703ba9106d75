"""Faults against the stack as `make up` runs it, with a stream of signed webhooks flowing:
NATS killed for 30 s, Redis killed and started again empty, the database's connections
terminated for 5 s, xp killed with SIGKILL, Ctrl-C mid-stream.

For each: every delivery is acknowledged in the end (Whop redelivers what was not) and counted
exactly once; nothing answers 500 (or any 5xx but 503) at any time; 503s come only while the
fault lasts; /readyz says not ready during it and ready after; the outbox drains and every
member who reached level 5 has its reward, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.faults import (
    Fault,
    Platform,
    assert_counted_once_and_settled,
    ctrl_c,
    database_connections_cut,
    described,
    nats_down,
    own_platform,
    redis_down,
    service_killed,
    through,
    unexpected_answers,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def platform(
    test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with own_platform(test_env, tmp_path_factory.mktemp("faults")) as platform:
        yield platform


@pytest.mark.parametrize(
    ("fault", "unready", "reads_only_200"),
    [
        pytest.param(nats_down(30), True, False, id="nats-killed-for-30-s"),
        # Boards and cards are read from Postgres while Redis is away.
        pytest.param(redis_down(5), True, True, id="redis-killed-and-back-empty"),
        # New connections succeed between terminations: readiness may not notice.
        pytest.param(
            database_connections_cut(5), False, False, id="database-connections-cut-for-5-s"
        ),
        pytest.param(service_killed("xp"), True, False, id="xp-killed-and-restarted-by-make-up"),
    ],
)
async def test_a_fault_costs_only_503s_while_it_lasts_and_nothing_is_lost(
    platform: Platform, fault: Fault, unready: bool, reads_only_200: bool
) -> None:
    run = await through(platform, fault)

    for replies in (run.stream.replies, run.reads.replies):
        unexpected = unexpected_answers(replies, run.window)
        assert not unexpected, (run.stream.statuses(), described(unexpected, run.window))
    if reads_only_200:
        assert set(run.reads.statuses()) == {200}, run.reads.statuses()
    if unready:
        assert run.readiness.was_unready(run.window.start, run.window.recovered)
    await assert_counted_once_and_settled(platform, run.stream)


async def test_ctrl_c_mid_stream_answers_what_is_in_flight_and_loses_nothing(
    platform: Platform,
) -> None:
    run = await through(platform, ctrl_c)

    # While the stack is down nothing answers (a refused connection, redelivered later); a
    # request in flight at Ctrl-C is answered, not cut off with a 5xx.
    for replies in (run.stream.replies, run.reads.replies):
        answered = [r for r in unexpected_answers(replies, run.window) if isinstance(r.status, int)]
        assert not answered, (run.stream.statuses(), described(answered, run.window))
    await assert_counted_once_and_settled(platform, run.stream)
