"""The profile-refresh task against a local server speaking Whop's users API: members no
webhook described get Whop's name, username and picture; described members, users of other
sources and users Whop does not know are not asked for (again); a run is bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.whop_api import FakeWhop, serving, whop_user
from tests.xp.conftest import MakeServicer
from tests.xp.support_tasks import run_task
from wee5_xp.awards import ActivityInput
from wee5_xp.models import Profile
from wee5_xp.profiles import ProfileFields

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def whop() -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    async with serving(fake, "/api/v1") as url:
        fake.base_url = url
        yield fake


def new_user(prefix: str = "user_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def post(
    make_xp: MakeServicer, community_id: str, user_id: str, profile: ProfileFields | None = None
) -> None:
    await make_xp(xp_cooldown_seconds=0).batcher.record(
        ActivityInput(
            community_id=community_id,
            user_id=user_id,
            kind="message",
            source="whop",
            idempotency_key=uuid.uuid4().hex,
            profile=profile,
        )
    )


async def profile_of(sessions: Sessions, user_id: str) -> tuple[str | None, ...] | None:
    async with sessions() as session:
        row = await session.get(Profile, user_id)
    return (row.display_name, row.username, row.avatar_url) if row else None


async def refresh(whop: FakeWhop, *argv: str, key: str | None = None, **settings: object) -> int:
    return await run_task(
        "profile-refresh",
        *argv,
        whop_api_url=whop.base_url,
        whop_api_key=whop.api_key if key is None else key,
        **settings,
    )


def looked_up(whop: FakeWhop) -> list[str]:
    return [call.path.rsplit("/", 1)[1] for call in whop.calls if "/users/" in call.path]


async def test_members_without_a_profile_get_whops_name_username_and_picture(
    whop: FakeWhop, make_xp: MakeServicer, community_id: str, sessionmaker: Sessions
) -> None:
    silent, described, gone, discord = new_user(), new_user(), new_user(), new_user("1234")
    whop.users[silent] = whop_user(silent, "Silent Sam", "silentsam", "https://img.whop/s.png")
    whop.users[described] = whop_user(described, "Whop Name", "whopname", None)
    for user in (silent, gone, discord):
        await post(make_xp, community_id, user)
    await post(make_xp, community_id, described, ProfileFields("Dee", "dee", None))

    assert await refresh(whop, "--limit", "100000") == 0

    assert await profile_of(sessionmaker, silent) == (
        "Silent Sam",
        "silentsam",
        "https://img.whop/s.png",
    )
    # What a webhook said stays; Whop is not asked about a member it already knows.
    assert await profile_of(sessionmaker, described) == ("Dee", "dee", None)
    assert {silent, gone} <= set(looked_up(whop))
    assert described not in looked_up(whop)
    assert discord not in looked_up(whop)  # not a Whop user id
    # Whop knows no such user: remembered as unknown, not asked again.
    assert await profile_of(sessionmaker, gone) == (None, None, None)
    assert all(call.headers["authorization"] == f"Bearer {whop.api_key}" for call in whop.calls)

    whop.calls.clear()
    assert await refresh(whop, "--limit", "100000") == 0
    assert silent not in looked_up(whop)
    assert gone not in looked_up(whop)


async def test_a_run_looks_up_at_most_its_limit(
    whop: FakeWhop, make_xp: MakeServicer, community_id: str
) -> None:
    for _ in range(3):
        await post(make_xp, community_id, new_user())

    assert await refresh(whop, "--limit", "2") == 0

    assert len(looked_up(whop)) == 2


async def test_a_lookup_that_keeps_failing_is_left_for_the_next_run(
    whop: FakeWhop, make_xp: MakeServicer, community_id: str, sessionmaker: Sessions
) -> None:
    user = new_user()
    whop.users[user] = whop_user(user, "Later", "later", None)
    await post(make_xp, community_id, user)
    whop.down = True

    # Every member without a profile is asked for (whichever the database holds), once each.
    assert await refresh(whop, "--limit", "100000", provider_attempts=1) == 1

    assert user in looked_up(whop)
    assert await profile_of(sessionmaker, user) is None
    whop.down = False
    assert await refresh(whop, "--limit", "100000") == 0
    assert await profile_of(sessionmaker, user) == ("Later", "later", None)


async def test_without_an_api_key_the_refresh_says_whop_is_off(
    whop: FakeWhop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await refresh(whop, key="") == 0

    assert "WEE5_WHOP_API_KEY is not set" in capsys.readouterr().err
    assert whop.calls == []
