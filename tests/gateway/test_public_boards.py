"""Public boards through the gateway: who may read a community's leaderboard (public, members,
admins), the per-IP budget of anonymous readers and the one-second cache that keeps them from
reaching xp more than once a second per board page, against real xp and billing gRPC servers,
Postgres, Redis and NATS."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_tiers as tiers
from tests.gateway.test_tiers import assert_problem
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.xp.boards import FRESH_READ_SECONDS, SHARED_READ_SECONDS, PublicBoards
from wee5_gateway.api.xp.schemas import Leaderboard
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.cache import PerAnswer, SharedReads
from wee5_gateway.db.models import AuditEntry

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
Client = httpx.AsyncClient
# The real xp and billing servers and the gateway, as the tiers tests run them.
xp_addr, billing_addr, settings, gateway, xp = (
    tiers.xp_addr,
    tiers.billing_addr,
    tiers.settings,
    tiers.gateway,
    tiers.xp,
)


async def earn(xp: XpServiceAsyncStub, community_id: str, users: list[str]) -> None:
    """One chat message each (xp runs without cooldown here)."""
    for user in users:
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user,
                    kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                    source=xp_pb2.SOURCE_API,
                    idempotency_key=uuid.uuid4().hex,
                )
            )
        )


def board(community_id: str, query: str = "") -> str:
    return f"/api/v1/communities/{community_id}/leaderboard{query}"


def settings_path(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/leaderboard-settings"


async def make_visible(
    gateway: Client, headers: dict[str, str], community_id: str, visibility: str
) -> None:
    changed = await gateway.put(
        settings_path(community_id), json={"visibility": visibility}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "community_id": community_id,
        "visibility": visibility,
        "history_visibility": "self_and_admins",
    }


def count_board_calls(gateway: Client) -> list[int]:
    """Counts the gateway's GetLeaderboard calls to xp: one item per call."""
    transport = gateway._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, Litestar)
    stub = app.state.downstream.xp
    real: Callable[..., Awaitable[Any]] = stub.GetLeaderboard
    calls: list[int] = []

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await real(*args, **kwargs)

    stub.GetLeaderboard = counted
    return calls


@pytest.fixture
async def admin(
    settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> dict[str, str]:
    return bearer(settings, await new_account(sessionmaker, community_id, "admin"))


@pytest.fixture
async def member(
    settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> dict[str, str]:
    account = await new_account(sessionmaker, community_id, "member", member_user_id="user_b")
    return bearer(settings, account)


async def test_boards_are_for_members_until_an_admin_chooses(
    gateway: Client, member: dict[str, str], community_id: str
) -> None:
    read = await gateway.get(settings_path(community_id), headers=member)
    assert read.status_code == 200, read.text
    assert read.json() == {
        "community_id": community_id,
        "visibility": "members",
        "history_visibility": "self_and_admins",
    }

    assert_problem(await gateway.get(board(community_id)), 401)
    assert (await gateway.get(board(community_id), headers=member)).status_code == 200
    # Without credentials an invalid community id is still a 401 first, as on every route.
    assert_problem(await gateway.get(board("not.an.id")), 401)


async def test_a_public_board_answers_anonymously_in_every_period_and_members_see_themselves(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    admin: dict[str, str],
    member: dict[str, str],
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    await earn(xp, community_id, ["user_a", "user_a", "user_b"])
    await make_visible(gateway, admin, community_id, "public")

    for period in ("all", "month", "week", "day"):
        response = await gateway.get(board(community_id, f"?period={period}"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert [e["user_id"] for e in body["entries"]] == ["user_a", "user_b"], period
        assert body["me"] is None
    mine = await gateway.get(board(community_id), headers=member)
    assert mine.status_code == 200, mine.text
    assert mine.json()["me"]["user_id"] == "user_b"
    # Someone signed in with no role here reads it as anyone would.
    stranger = bearer(
        settings, await new_account(sessionmaker, f"exp_{uuid.uuid4().hex[:8]}", "owner")
    )
    theirs = await gateway.get(board(community_id), headers=stranger)
    assert theirs.status_code == 200, theirs.text
    assert len(theirs.json()["entries"]) == 2
    assert theirs.json()["me"] is None


async def test_an_admins_only_board_is_403_for_members_and_401_without_credentials(
    gateway: Client, admin: dict[str, str], member: dict[str, str], community_id: str
) -> None:
    await make_visible(gateway, admin, community_id, "admins")

    assert_problem(await gateway.get(board(community_id), headers=member), 403)
    assert_problem(await gateway.get(board(community_id)), 401)
    assert (await gateway.get(board(community_id), headers=admin)).status_code == 200


async def test_members_cannot_change_the_visibility_and_an_unknown_one_is_400(
    gateway: Client, admin: dict[str, str], member: dict[str, str], community_id: str
) -> None:
    refused = await gateway.put(
        settings_path(community_id), json={"visibility": "public"}, headers=member
    )
    assert_problem(refused, 403)
    unknown = await gateway.put(
        settings_path(community_id), json={"visibility": "everyone"}, headers=admin
    )
    assert_problem(unknown, 400)
    assert_problem(await gateway.get(board(community_id)), 401)


async def test_back_to_members_the_board_401s_anonymously_at_once_and_both_changes_are_audited(
    gateway: Client, admin: dict[str, str], sessionmaker: Sessions, community_id: str
) -> None:
    await make_visible(gateway, admin, community_id, "public")
    assert (await gateway.get(board(community_id))).status_code == 200

    await make_visible(gateway, admin, community_id, "members")

    assert_problem(await gateway.get(board(community_id)), 401)
    async with sessionmaker() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.community_id == community_id,
                    AuditEntry.action == "leaderboard_settings.changed",
                )
                .order_by(AuditEntry.id)
            )
        )
    private = {"history_visibility": "self_and_admins"}
    assert [(e.before, e.after, e.target) for e in entries] == [
        (
            {"visibility": "members", **private},
            {"visibility": "public", **private},
            f"community:{community_id}",
        ),
        (
            {"visibility": "public", **private},
            {"visibility": "members", **private},
            f"community:{community_id}",
        ),
    ]


async def test_many_anonymous_reads_within_a_second_reach_xp_once(
    gateway: Client,
    admin: dict[str, str],
    member: dict[str, str],
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    await earn(xp, community_id, ["user_a"])
    await make_visible(gateway, admin, community_id, "public")
    calls = count_board_calls(gateway)

    started = time.monotonic()
    reads = await asyncio.gather(*(gateway.get(board(community_id)) for _ in range(20)))
    elapsed = time.monotonic() - started

    assert all(r.status_code == 200 for r in reads)
    assert all(r.json() == reads[0].json() for r in reads)
    # One call per cache second that passed (one, unless the machine is very slow).
    assert len(calls) <= math.ceil(elapsed / FRESH_READ_SECONDS)
    # A signed-in reader's page carries their own entry: it is an answer of its own.
    before = len(calls)
    await gateway.get(board(community_id), headers=member)
    assert len(calls) == before + 1
    # After the cache second, anonymous readers see new XP.
    await earn(xp, community_id, [f"user_{uuid.uuid4().hex[:6]}"])
    await asyncio.sleep(SHARED_READ_SECONDS + 0.1)
    fresh = await gateway.get(board(community_id))
    assert len(fresh.json()["entries"]) == 2


@pytest.fixture
async def limited_gateway(
    xp_addr: str, billing_addr: str, test_env: dict[str, str], redis: Any
) -> AsyncIterator[tuple[Client, GatewaySettings]]:
    """A gateway letting 3 anonymous board reads per minute per IP, counting under a Redis
    prefix of this test's own."""
    limited = gateway_settings(
        xp_addr,
        billing_addr=billing_addr,
        redis_prefix=f"{test_env['WEE5_REDIS_PREFIX']}:{uuid.uuid4().hex[:8]}",
        rate_limit_public_read="3/minute",
    )
    async with serve(limited) as client:
        yield client, limited


async def test_anonymous_reads_over_the_per_ip_limit_get_429_and_members_still_read(
    limited_gateway: tuple[Client, GatewaySettings], sessionmaker: Sessions, community_id: str
) -> None:
    gateway, limited = limited_gateway
    admin = bearer(limited, await new_account(sessionmaker, community_id, "admin"))
    await make_visible(gateway, admin, community_id, "public")

    answers = [(await gateway.get(board(community_id))).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    over = await gateway.get(board(community_id))
    assert_problem(over, 429)
    assert int(over.headers["retry-after"]) > 0
    assert (await gateway.get(board(community_id), headers=admin)).status_code == 200


async def test_a_failed_xp_call_is_not_served_to_the_next_anonymous_reader() -> None:
    boards = PublicBoards(cast(Any, None), visibility_ttl=5.0)
    page = ("exp_a", 0, "all", 25, None, None, "", "")
    answer = Leaderboard("exp_a", "all", None, [], None)
    outcomes: list[Leaderboard | Exception] = [RuntimeError("xp is down"), answer]

    async def read() -> Leaderboard:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError):
        await boards.pages.get(page, read)
    assert await boards.pages.get(page, read) is answer
    assert await boards.pages.get(page, read) is answer  # cached: `outcomes` is empty


async def test_a_busy_page_is_served_at_once_while_its_next_answer_is_read() -> None:
    reads = SharedReads[str, int](fresh=0.05, oldest=10.0)
    answers = iter(range(1, 10))
    release = asyncio.Event()

    async def read() -> int:
        answer = next(answers)
        if answer > 1:
            await release.wait()  # the second read is slow
        return answer

    assert await reads.get("page", read) == 1
    await asyncio.sleep(0.06)  # no longer fresh
    # Served the old answer without waiting, while one new read runs (a second asker does
    # not start another).
    assert await reads.get("page", read) == 1
    assert await reads.get("page", read) == 1
    release.set()
    await asyncio.sleep(0.01)
    assert await reads.get("page", read) == 2
    assert next(answers) == 3  # two reads in all


async def test_a_slow_read_is_served_no_longer_than_oldest_after_it_began() -> None:
    # The refresh that began before a change and ended after it saw the old state: it must
    # not be served for a whole `oldest` after it ended (a rank card kept its old ETag so).
    reads = SharedReads[str, int](fresh=0.05, oldest=0.3)
    answers = iter(range(1, 10))

    async def read() -> int:
        answer = next(answers)
        await asyncio.sleep(0.2 if answer == 1 else 0)
        return answer

    begun = time.monotonic()
    assert await reads.get("page", read) == 1
    await asyncio.sleep(max(0.0, begun + 0.35 - time.monotonic()))  # 0.15 s after it ended
    assert await reads.get("page", read) == 2


async def test_readers_finding_the_visibility_stale_cost_postgres_one_read(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    statements: list[str] = []

    def remember(*args: Any) -> None:
        statements.append(str(args[2]))

    boards = PublicBoards(sessionmaker, visibility_ttl=5.0)
    engine = cast(Any, sessionmaker.kw["bind"]).sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        seen = await asyncio.gather(*(boards.visibility(community_id) for _ in range(20)))
        again = await boards.visibility(community_id)
    finally:
        event.remove(engine, "before_cursor_execute", remember)

    assert set(seen) == {"members"}
    assert again == "members"
    assert len([s for s in statements if "leaderboard_settings" in s]) == 1


def test_what_is_derived_from_a_shared_answer_is_derived_once_per_answer() -> None:
    derived = PerAnswer[str](size=2)
    calls: list[str] = []

    def derive(text: str) -> Callable[[], str]:
        def run() -> str:
            calls.append(text)
            return text.upper()

        return run

    first, equal_but_new = ["a"], ["a"]
    assert derived.get(first, "me", derive("a")) == "A"
    assert derived.get(first, "me", derive("a")) == "A"  # the same answer: not again
    assert derived.get(equal_but_new, "me", derive("a")) == "A"  # a new answer: again
    assert derived.get(first, "you", derive("a")) == "A"  # another viewer: again
    assert calls == ["a", "a", "a"]
    # Only the last two are kept: the first one is derived anew.
    assert derived.get(first, "me", derive("a")) == "A"
    assert calls == ["a", "a", "a", "a"]
