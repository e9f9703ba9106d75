"""Discord slash commands over HTTP interactions through the real gateway, xp and rewards
(Postgres, Redis, NATS): the Ed25519 signature (a test key pair stands in for the
application's), PING, `/rank` with the rank card PNG attached, `/top`, `/give-xp` (admins only,
once per interaction, audited with the Discord user as actor), `/rewards`, and a server linked to
no community."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.discord.conftest import Platform, platform  # noqa: F401 (the fixture)
from tests.support.discord_gateway import snowflake
from tests.support.discord_interactions import (
    ADMINISTRATOR,
    MANAGE_GUILD,
    DiscordApplication,
    command,
    multipart,
    ping,
)
from tests.support.gateway import gateway_settings, serve
from wee5.rewards.v1 import rewards_pb2
from wee5.xp.v1 import xp_pb2
from wee5_gateway.db.models import AuditEntry

PATH = "/webhooks/discord/interactions"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPHEMERAL = 1 << 6
# VIEW_CHANNEL | SEND_MESSAGES | ADD_REACTIONS: a member, no admin.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 6)


@pytest.fixture(scope="module")
def application() -> DiscordApplication:
    return DiscordApplication()


@pytest.fixture
async def gateway(
    platform: Platform,  # noqa: F811
    application: DiscordApplication,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        platform.xp_addr,
        rewards_addr=platform.rewards_addr,
        discord_public_key=application.public_key,
    )
    async with serve(settings) as client:
        yield client


@dataclass
class Server:
    """A Discord server bound to a community of its own."""

    platform: Platform
    guild: str
    community_id: str

    async def give(self, user_id: str, xp: int) -> None:
        await self.platform.xp.AdjustXp(
            xp_pb2.AdjustXpRequest(
                community_id=self.community_id,
                user_id=user_id,
                delta=xp,
                reason="test",
                actor_user_id="test",
                idempotency_key=uuid.uuid4().hex,
            )
        )


@pytest.fixture
async def bound(platform: Platform) -> Server:  # noqa: F811
    guild = snowflake()
    return Server(platform, guild, await platform.bind(guild))


async def send(
    gateway: httpx.AsyncClient, application: DiscordApplication, interaction: dict[str, object]
) -> httpx.Response:
    body, headers = application.signed(interaction)
    return await gateway.post(PATH, content=body, headers=headers)


async def test_a_signed_ping_gets_pong(
    gateway: httpx.AsyncClient, application: DiscordApplication
) -> None:
    response = await send(gateway, application, ping())
    assert response.status_code == 200, response.text
    assert response.json() == {"type": 1}


async def test_a_forged_signature_is_401(
    gateway: httpx.AsyncClient, application: DiscordApplication
) -> None:
    forger = DiscordApplication()
    body, headers = forger.signed(ping())
    response = await gateway.post(PATH, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    # A body changed after signing is no better.
    body, headers = application.signed(ping())
    tampered = body.replace(b'"type": 1', b'"type": 2')
    assert (await gateway.post(PATH, content=tampered, headers=headers)).status_code == 401


async def test_a_stale_or_missing_signature_is_401(
    gateway: httpx.AsyncClient, application: DiscordApplication
) -> None:
    body, headers = application.signed(ping(), timestamp=int(time.time()) - 3600)
    assert (await gateway.post(PATH, content=body, headers=headers)).status_code == 401
    for missing in ("x-signature-ed25519", "x-signature-timestamp"):
        body, headers = application.signed(ping())
        del headers[missing]
        response = await gateway.post(PATH, content=body, headers=headers)
        assert response.status_code == 401, missing
    body, headers = application.signed(ping())
    headers["x-signature-ed25519"] = "not hex"
    assert (await gateway.post(PATH, content=body, headers=headers)).status_code == 401


async def test_rank_answers_with_the_rank_card_png_attached(
    gateway: httpx.AsyncClient, application: DiscordApplication, bound: Server
) -> None:
    guild = bound.guild
    leader, member = snowflake(), snowflake()
    await bound.give(leader, 500)
    await bound.give(member, 120)

    # The invoker asks for another member's card.
    response = await send(
        gateway, application, command("rank", guild, leader, options={"member": member})
    )
    assert response.status_code == 200, response.text
    parts = multipart(response.headers["content-type"], response.content)
    payload = json.loads(parts["payload_json"][1])
    assert payload["type"] == 4
    assert f"<@{member}> is rank #2" in payload["data"]["content"]
    assert payload["data"]["attachments"] == [{"id": 0, "filename": "rank.png"}]
    content_type, png = parts["files[0]"]
    assert png.startswith(PNG_SIGNATURE)
    assert content_type == "image/png"
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.verify()

    # Without `member`, the invoker's own card.
    response = await send(gateway, application, command("rank", guild, leader))
    parts = multipart(response.headers["content-type"], response.content)
    payload = json.loads(parts["payload_json"][1])
    assert f"<@{leader}> is rank #1" in payload["data"]["content"]

    # Someone without XP gets a private answer, no card.
    response = await send(gateway, application, command("rank", guild, snowflake()))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["flags"] == EPHEMERAL
    assert "no XP" in data["content"]


async def test_top_lists_members_in_board_order(
    gateway: httpx.AsyncClient, application: DiscordApplication, bound: Server
) -> None:
    guild = bound.guild
    members = [snowflake() for _ in range(12)]
    for index, user_id in enumerate(members):
        await bound.give(user_id, 1000 - index * 50)

    response = await send(gateway, application, command("top", guild, members[5]))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == 4
    description = answer["data"]["embeds"][0]["description"]
    lines = description.split("\n")
    assert len(lines) == 10
    for rank, (line, user_id) in enumerate(zip(lines, members, strict=False), start=1):
        assert line.startswith(f"**#{rank}** {user_id} ")
    assert members[10] not in description

    response = await send(
        gateway, application, command("top", guild, members[0], options={"period": "year"})
    )
    assert response.json()["data"]["flags"] == EPHEMERAL


async def test_a_server_linked_to_no_community_gets_a_private_refusal(
    gateway: httpx.AsyncClient, application: DiscordApplication
) -> None:
    for name in ("rank", "top"):
        response = await send(gateway, application, command(name, snowflake(), snowflake()))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["type"] == 4
        assert answer["data"]["flags"] == EPHEMERAL
        assert "not linked" in answer["data"]["content"]


async def test_a_member_hidden_from_the_boards_sees_their_card_privately_and_others_do_not(
    gateway: httpx.AsyncClient, application: DiscordApplication, bound: Server
) -> None:
    hidden, other = snowflake(), snowflake()
    await bound.give(hidden, 300)
    await bound.give(other, 100)
    await bound.platform.xp.SetMemberPrivacy(
        xp_pb2.SetMemberPrivacyRequest(
            community_id=bound.community_id, user_id=hidden, hidden_from_leaderboards=True
        )
    )

    response = await send(gateway, application, command("rank", bound.guild, hidden))
    parts = multipart(response.headers["content-type"], response.content)
    assert json.loads(parts["payload_json"][1])["data"]["flags"] == EPHEMERAL
    assert parts["files[0]"][1].startswith(PNG_SIGNATURE)

    response = await send(
        gateway, application, command("rank", bound.guild, other, options={"member": hidden})
    )
    data = response.json()["data"]
    assert data["flags"] == EPHEMERAL
    assert "no XP" in data["content"]


def give_xp(
    guild: str, admin: str, member: str, amount: object, reason: str, permissions: int
) -> dict[str, object]:
    """`/give-xp member amount reason` run by `admin` with `permissions`."""
    return command(
        "give-xp",
        guild,
        admin,
        options={"member": member, "amount": amount, "reason": reason},
        permissions=permissions,
    )


async def adjustments_audited(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> list[AuditEntry]:
    async with sessionmaker() as session:
        return list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.community_id == community_id, AuditEntry.action == "xp.adjusted")
                .order_by(AuditEntry.id)
            )
        )


async def test_give_xp_by_an_admin_counts_once_though_delivered_twice_and_is_audited(
    gateway: httpx.AsyncClient,
    application: DiscordApplication,
    bound: Server,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin, member = snowflake(), snowflake()
    interaction = give_xp(bound.guild, admin, member, 150, "won the contest", MANAGE_GUILD)

    first = await send(gateway, application, interaction)
    again = await send(gateway, application, interaction)  # the same interaction, redelivered

    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["type"] == 4
    assert "flags" not in answer["data"]  # in the channel
    assert answer["data"]["content"] == (
        f"<@{admin}> gave <@{member}> 150 XP (won the contest). "
        f"<@{member}> now has 150 XP, level 2."
    )
    assert again.json()["data"]["content"] == answer["data"]["content"]
    assert await bound.platform.xp_of(bound.community_id, member) == 150
    assert await bound.platform.reasons(bound.community_id, member) == [
        "adjustment:won the contest"
    ]
    [entry] = await adjustments_audited(sessionmaker, bound.community_id)
    assert entry.actor_discord_user_id == admin
    assert (entry.actor_account_id, entry.actor_whop_user_id) == (None, None)
    assert (entry.status, entry.target) == ("done", f"member:{member}")
    assert entry.before == {"xp": 0, "level": 1}
    assert entry.after is not None
    assert (entry.after["xp"], entry.after["delta"]) == (150, 150)

    # ADMINISTRATOR is enough too; a negative amount takes XP away.
    other_admin = snowflake()
    taken = await send(
        gateway,
        application,
        give_xp(bound.guild, other_admin, member, -50, "spam", ADMINISTRATOR | (1 << 10)),
    )
    assert taken.json()["data"]["content"] == (
        f"<@{other_admin}> took 50 XP from <@{member}> (spam). <@{member}> now has 100 XP, level 2."
    )
    audited = await adjustments_audited(sessionmaker, bound.community_id)
    assert [e.actor_discord_user_id for e in audited] == [admin, other_admin]


async def test_give_xp_by_a_member_who_is_no_admin_is_refused_privately(
    gateway: httpx.AsyncClient,
    application: DiscordApplication,
    bound: Server,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    member = snowflake()
    for permissions in (MEMBER_PERMISSIONS, 0):
        response = await send(
            gateway,
            application,
            give_xp(bound.guild, member, member, 500, "for me", permissions),
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["flags"] == EPHEMERAL
        assert "Only the server's admins" in data["content"]

    assert await bound.platform.xp_of(bound.community_id, member) == 0
    assert await adjustments_audited(sessionmaker, bound.community_id) == []


async def test_give_xp_to_a_bot_is_refused_privately(
    gateway: httpx.AsyncClient,
    application: DiscordApplication,
    bound: Server,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin, bot = snowflake(), snowflake()
    interaction = command(
        "give-xp",
        bound.guild,
        admin,
        options={"member": bot, "amount": 100, "reason": "helpful bot"},
        permissions=MANAGE_GUILD,
        bots=frozenset({bot}),
    )

    response = await send(gateway, application, interaction)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["flags"] == EPHEMERAL
    assert data["content"] == "Nothing changed: bots do not earn XP."
    assert await bound.platform.xp_of(bound.community_id, bot) == 0
    assert await adjustments_audited(sessionmaker, bound.community_id) == []


async def test_give_xp_with_a_bad_amount_or_reason_answers_a_private_error(
    gateway: httpx.AsyncClient,
    application: DiscordApplication,
    bound: Server,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin, member = snowflake(), snowflake()
    await bound.give(member, 30)
    refused = {
        "amount 0": (0, "a reason", "amount is 0"),
        "too much": (10_000_001, "a reason", "<= 10000000 - at `amount`"),
        "not a number": ("lots", "a reason", "at `amount`"),
        "below 0": (-31, "a reason", "below 0"),
        "no reason": (10, "  ", "at `reason`"),
        "reason too long": (10, "x" * 181, "<= 180 - at `reason`"),
    }
    for case, (amount, reason, words) in refused.items():
        response = await send(
            gateway, application, give_xp(bound.guild, admin, member, amount, reason, MANAGE_GUILD)
        )
        assert response.status_code == 200, (case, response.text)
        data = response.json()["data"]
        assert data["flags"] == EPHEMERAL, case
        assert data["content"].startswith("Nothing changed"), (case, data["content"])
        assert words in data["content"], (case, data["content"])

    assert await bound.platform.xp_of(bound.community_id, member) == 30
    assert await adjustments_audited(sessionmaker, bound.community_id) == []


async def test_rewards_lists_the_rules_by_level_and_marks_those_the_member_unlocked(
    gateway: httpx.AsyncClient, application: DiscordApplication, bound: Server
) -> None:
    await bound.platform.rewards.UpsertRewardRule(
        rewards_pb2.UpsertRewardRuleRequest(
            community_id=bound.community_id,
            level=2,
            reward=rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_FREE_DAYS, free_days=1),
            enabled=True,
        )
    )
    member, newcomer = snowflake(), snowflake()
    await bound.give(member, 100)  # level 2

    response = await send(gateway, application, command("rewards", bound.guild, member))

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["flags"] == EPHEMERAL
    assert data["content"] == "You are level 2."
    lines = data["embeds"][0]["description"].split("\n")
    # The defaults (5, 10, 25, 50, 100) and the community's own level 2, lowest first.
    assert [line.split("**")[1] for line in lines] == [
        "Level 2",
        "Level 5",
        "Level 10",
        "Level 25",
        "Level 50",
        "Level 100",
    ]
    assert lines[0].startswith("✅ **Level 2**: 1 free day · ")
    assert lines[1] == "🔒 **Level 5**: 3 free days · 3 levels to go"
    assert all(line.startswith("🔒") for line in lines[1:])

    # Someone with no XP yet has unlocked nothing.
    response = await send(gateway, application, command("rewards", bound.guild, newcomer))
    lines = response.json()["data"]["embeds"][0]["description"].split("\n")
    assert all(line.startswith("🔒") for line in lines)
