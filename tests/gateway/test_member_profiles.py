"""Member profiles and privacy through the gateway, against a real xp server, Postgres, Redis:
names, usernames and avatars from Whop webhook payloads on boards and cards, and a member who
hides from the boards others see but still sees themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_webhooks as webhooks
from tests.gateway.test_webhooks import assert_problem, deliver
from tests.support.gateway import SECRET, bearer, gateway_settings, new_account, serve
from tests.support.whop import (
    chat_message_created,
    chat_reaction_created,
    membership_event,
    new_id,
)
from tests.xp.support_tasks import run_task
from wee5_gateway.api.xp.boards import SHARED_READ_SECONDS
from wee5_gateway.config import GatewaySettings

Client = httpx.AsyncClient
Sessions = async_sessionmaker[AsyncSession]
xp_addr = webhooks.xp_addr
AVATAR = "https://assets.whop.com/avatars/ada.png"


@pytest.fixture
def settings(xp_addr: str) -> GatewaySettings:
    return gateway_settings(xp_addr, whop_webhook_secret=SECRET)


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    # A platform admin reads by default; tests pass a member's token where it matters.
    async with serve(settings, headers=bearer(settings, platform_admin=True)) as client:
        yield client


def message_from(
    community_id: str, user_id: str, user: dict[str, Any], at: datetime | None = None
) -> dict[str, Any]:
    """A chat message whose `user` object is exactly `user` (plus the id)."""
    envelope = chat_message_created(community_id, user_id)
    message = envelope["data"]["message"]
    message["user"] = {"id": user_id, **user}
    if at is not None:
        message["created_at"] = at.isoformat()
    return envelope


async def leaderboard(
    client: Client, community_id: str, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/communities/{community_id}/leaderboard", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def member(
    client: Client, community_id: str, user_id: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.get(
        f"/api/v1/communities/{community_id}/members/{user_id}", headers=headers
    )


def profile(entry: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return entry["display_name"], entry["username"], entry["avatar_url"]


async def card(
    client: Client, community_id: str, user_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await member(client, community_id, user_id, headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_names_and_avatars_from_webhook_payloads_show_on_board_and_card(
    gateway: Client, community_id: str
) -> None:
    ada, bob = new_id("user"), new_id("user")
    picture = {"name": "Ada L", "username": "ada", "profile_picture": {"url": AVATAR}}
    assert (await deliver(gateway, message_from(community_id, ada, picture))).is_success
    reaction = chat_reaction_created(community_id, bob)
    reaction["data"]["reaction"]["user"] = {"id": bob, "name": "Bob B", "username": "bobb"}
    assert (await deliver(gateway, reaction)).is_success

    entries = (await leaderboard(gateway, community_id))["entries"]

    assert [(e["user_id"], profile(e)) for e in entries] == [
        (ada, ("Ada L", "ada", AVATAR)),
        (bob, ("Bob B", "bobb", None)),
    ]
    assert profile(await card(gateway, community_id, ada)) == ("Ada L", "ada", AVATAR)


async def test_a_newer_name_replaces_the_old_one_and_a_message_without_one_keeps_it(
    gateway: Client, community_id: str
) -> None:
    ada = new_id("user")
    now = datetime.now(UTC)
    await deliver(gateway, message_from(community_id, ada, {"name": "Ada", "username": "ada"}))
    await deliver(
        gateway, message_from(community_id, ada, {"name": "Ada Lovelace", "username": "ada"})
    )
    assert profile(await card(gateway, community_id, ada)) == ("Ada Lovelace", "ada", None)

    # No name, username or picture: nothing known is blanked; the picture is learned.
    await deliver(gateway, message_from(community_id, ada, {"profile_picture": {"url": AVATAR}}))
    # An older message (delivered late) does not bring back the old name.
    late = message_from(
        community_id, ada, {"name": "Ada", "username": "ada"}, now - timedelta(hours=1)
    )
    await deliver(gateway, late)
    # A picture that is not an http(s) URL is ignored.
    await deliver(
        gateway,
        message_from(community_id, ada, {"profile_picture": {"url": "javascript:alert(1)"}}),
    )

    await asyncio.sleep(SHARED_READ_SECONDS)  # readers of the same second share one card
    assert profile(await card(gateway, community_id, ada)) == ("Ada Lovelace", "ada", AVATAR)
    (entry,) = (await leaderboard(gateway, community_id))["entries"]
    assert profile(entry) == ("Ada Lovelace", "ada", AVATAR)


async def test_a_membership_event_names_the_member_when_chat_does_not(
    gateway: Client, community_id: str
) -> None:
    cy = new_id("user")
    joined = membership_event("membership.activated", cy, new_id("biz"))
    joined["data"]["user"] = {"id": cy, "name": "Cy Young", "username": "cy", "email": None}
    assert (await deliver(gateway, joined)).is_success

    await deliver(gateway, message_from(community_id, cy, {}))

    assert profile(await card(gateway, community_id, cy)) == ("Cy Young", "cy", None)


async def test_unknown_profile_fields_are_null(gateway: Client, community_id: str) -> None:
    quiet = new_id("user")
    await deliver(gateway, message_from(community_id, quiet, {}))

    (entry,) = (await leaderboard(gateway, community_id))["entries"]
    assert profile(entry) == (None, None, None)


async def test_a_hidden_member_is_absent_from_others_boards_but_sees_themselves(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    top, hidden, low = new_id("user"), new_id("user"), new_id("user")
    for user, messages in ((top, 3), (hidden, 2), (low, 1)):
        for _ in range(messages):
            await deliver(gateway, chat_message_created(community_id, user))
    as_hidden = bearer(
        settings, await new_account(sessionmaker, community_id, "member", member_user_id=hidden)
    )
    as_low = bearer(
        settings, await new_account(sessionmaker, community_id, "member", member_user_id=low)
    )
    privacy = f"/api/v1/communities/{community_id}/members/me/privacy"

    response = await gateway.put(
        privacy, json={"hidden_from_leaderboards": True}, headers=as_hidden
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "community_id": community_id,
        "user_id": hidden,
        "hidden_from_leaderboards": True,
    }
    for period in ("all", "week"):
        # Others: the hidden member is gone and the ranks close the gap.
        seen_by_low = await leaderboard(gateway, community_id, period=period, headers=as_low)
        assert [(e["rank"], e["user_id"]) for e in seen_by_low["entries"]] == [(1, top), (2, low)]
        assert seen_by_low["me"]["rank"] == 2
        # The hidden member: not on the page either, but their own entry ranks as if visible.
        own = await leaderboard(gateway, community_id, period=period, headers=as_hidden)
        assert [e["user_id"] for e in own["entries"]] == [top, low]
        assert (own["me"]["rank"], own["me"]["user_id"], own["me"]["xp"]) == (2, hidden, 40)
    own_card = await card(gateway, community_id, hidden, as_hidden)
    assert (own_card["rank"], own_card["hidden_from_leaderboards"]) == (2, True)
    assert own_card["periods"]["day"]["rank"] == 2
    # Others do not get the hidden member's card; admins do.
    assert_problem(await member(gateway, community_id, hidden, headers=as_low), 404)
    assert (await card(gateway, community_id, hidden))["rank"] == 2
    # A new activity of the hidden member does not put them back on the board.
    await deliver(gateway, chat_message_created(community_id, hidden))
    for period in ("all", "day"):
        entries = (await leaderboard(gateway, community_id, period=period))["entries"]
        assert [e["user_id"] for e in entries] == [top, low]
    # Nor does rebuilding the boards from Postgres.
    assert await run_task("reconcile") == 0
    for period in ("all", "day"):
        entries = (await leaderboard(gateway, community_id, period=period))["entries"]
        assert [e["user_id"] for e in entries] == [top, low]

    response = await gateway.put(
        privacy, json={"hidden_from_leaderboards": False}, headers=as_hidden
    )

    assert response.status_code == 200, response.text
    entries = (await leaderboard(gateway, community_id))["entries"]
    assert [(e["rank"], e["user_id"], e["xp"]) for e in entries] == [
        (1, top, 60),
        (2, hidden, 60),
        (3, low, 20),
    ]


async def test_privacy_needs_a_caller_who_is_a_member_and_a_boolean(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    privacy = f"/api/v1/communities/{community_id}/members/me/privacy"
    unlinked = bearer(settings, await new_account(sessionmaker, community_id, "admin"))

    problem = assert_problem(
        await gateway.put(privacy, json={"hidden_from_leaderboards": True}, headers=unlinked),
        409,
    )
    assert "not linked to a member" in problem["detail"]

    as_member = bearer(
        settings,
        await new_account(sessionmaker, community_id, "member", member_user_id=new_id("user")),
    )
    assert_problem(
        await gateway.put(privacy, json={"hidden_from_leaderboards": "yes"}, headers=as_member),
        400,
    )
    outsider = bearer(settings, await new_account(sessionmaker))
    assert_problem(
        await gateway.put(privacy, json={"hidden_from_leaderboards": True}, headers=outsider),
        403,
    )
