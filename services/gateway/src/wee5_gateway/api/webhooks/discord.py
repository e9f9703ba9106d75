"""Discord slash commands over HTTP interactions (POST /webhooks/discord/interactions).

Discord signs each interaction with the application's Ed25519 key over timestamp + raw body
(`X-Signature-Ed25519`, `X-Signature-Timestamp`); a bad, missing or stale signature is 401
before the body is read as JSON. PING is answered PONG; commands in a guild bound to a
community (rewards' GetDiscordGuild) are answered from xp: `/rank [member]` with the rank card
PNG attached (a multipart answer: `payload_json` and `files[0]`), `/top [period]` with the
board's first ten, `/give-xp member amount reason` (the server's admins: an XP adjustment,
audited with the Discord user as its actor) and `/rewards` (the level rewards, the invoker's
marked). A guild bound to no community gets an ephemeral refusal. The commands themselves
(names, options, bounds) are `wee5_kit.discord_commands`, which the bot registers."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any, cast

import grpc
import msgspec
from litestar import Response
from litestar.datastructures import State
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.standing import describe_reward, reward_standing, reward_state
from wee5_gateway.api.xp.boards import provide_boards
from wee5_gateway.api.xp.reads import member_standing, read_card, read_leaderboard
from wee5_gateway.api.xp.rules import adjust_xp
from wee5_gateway.api.xp.schemas import Period, XpAdjustmentIn
from wee5_gateway.core.access import Access, Principal, Role
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import Sessions
from wee5_gateway.core.problems import NotFoundProblem
from wee5_kit.communities import is_member_id
from wee5_kit.discord_commands import (
    ADMINISTRATOR,
    GIVE_XP,
    MANAGE_GUILD,
    PERIODS,
    RANK,
    REWARDS,
    TOP,
)

PING = 1
APPLICATION_COMMAND = 2
PONG = 1
CHANNEL_MESSAGE = 4
EPHEMERAL = 1 << 6
# A signature older (or further ahead) than this is refused: a captured interaction cannot be
# replayed later.
MAX_SKEW_SECONDS = 300
TOP_COUNT = 10
# xp's refusals of an adjustment the admin can act on: a bad value, XP below 0.
ADJUSTMENT_REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
NOT_LINKED = (
    "This server is not linked to a WEE5 community yet: an admin of the community can link it "
    "from the community's Discord settings."
)


class InteractionRejected(Exception):
    """The interaction's signature is missing, stale or not Discord's."""


def verify(public_key_hex: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    signature = headers.get("x-signature-ed25519")
    timestamp = headers.get("x-signature-timestamp")
    if not signature or not timestamp:
        raise InteractionRejected("X-Signature-Ed25519 and X-Signature-Timestamp are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise InteractionRejected("X-Signature-Timestamp is not a Unix time") from None
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise InteractionRejected("X-Signature-Timestamp is too old or in the future")
    try:
        VerifyKey(bytes.fromhex(public_key_hex)).verify(
            timestamp.encode() + body, bytes.fromhex(signature)
        )
    except (BadSignatureError, ValueError):
        raise InteractionRejected("the Ed25519 signature does not match") from None


def now() -> float:
    return time.time()


def message(content: str, *, ephemeral: bool = False, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"content": content, "allowed_mentions": {"parse": []}, **extra}
    if ephemeral:
        data["flags"] = EPHEMERAL
    return {"type": CHANNEL_MESSAGE, "data": data}


def with_file(answer: dict[str, Any], filename: str, png: bytes) -> Response[bytes]:
    """An interaction answer with one attachment, as Discord takes it: multipart/form-data
    with the JSON in `payload_json` and the file in `files[0]`."""
    answer["data"]["attachments"] = [{"id": 0, "filename": filename}]
    boundary = secrets.token_hex(16)
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="payload_json"\r\n'
            "Content-Type: application/json\r\n\r\n"
            f"{json.dumps(answer)}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files[0]"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Response(body, media_type=f"multipart/form-data; boundary={boundary}")


def _options(interaction: dict[str, Any]) -> dict[str, Any]:
    options = (interaction.get("data") or {}).get("options") or []
    return {str(o.get("name")): o.get("value") for o in options if isinstance(o, dict)}


def _invoker(interaction: dict[str, Any]) -> str:
    user = (interaction.get("member") or {}).get("user") or interaction.get("user") or {}
    return str(user.get("id") or "")


async def _community(downstream: Downstream, guild_id: str) -> str | None:
    try:
        reply = await downstream.rewards.GetDiscordGuild(
            rewards_pb2.GetDiscordGuildRequest(guild_id=guild_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return None
        raise
    return reply.community_id or None


async def answer(state: State, interaction: dict[str, Any]) -> dict[str, Any] | Response[bytes]:
    """The answer to one verified interaction."""
    kind = interaction.get("type")
    if kind == PING:
        return {"type": PONG}
    if kind != APPLICATION_COMMAND:
        return message("WEE5 does not handle this kind of interaction.", ephemeral=True)
    guild_id = str(interaction.get("guild_id") or "")
    if not guild_id:
        return message("WEE5 commands work inside a server.", ephemeral=True)
    downstream = cast(Downstream, state.downstream)
    community_id = await _community(downstream, guild_id)
    if community_id is None:
        return message(NOT_LINKED, ephemeral=True)
    return await _command(state, downstream, community_id, interaction)


async def _command(
    state: State, downstream: Downstream, community_id: str, interaction: dict[str, Any]
) -> dict[str, Any] | Response[bytes]:
    """The answer to one command in the server of `community_id`."""
    invoker = _invoker(interaction)
    access = Access(Principal(), community_id, None, invoker or None)
    name = (interaction.get("data") or {}).get("name")
    options = _options(interaction)
    if name == RANK.name:
        return await _rank(state, downstream, access, str(options.get("member") or invoker))
    if name == TOP.name:
        return await _top(state, downstream, access, str(options.get("period") or "all"))
    if name == GIVE_XP.name:
        sessions = cast(Sessions, state.sessionmaker)
        return await _give_xp(sessions, downstream, community_id, interaction, options)
    if name == REWARDS.name:
        return await _rewards(downstream, community_id, invoker)
    return message(f"Unknown command /{name}.", ephemeral=True)


def may_adjust_xp(interaction: dict[str, Any]) -> bool:
    """The invoker has Administrator or Manage Server in the guild. Discord computes
    `member.permissions` for the interaction; a server's owner has every bit."""
    try:
        bits = int((interaction.get("member") or {}).get("permissions") or 0)
    except (TypeError, ValueError):
        return False
    return bool(bits & (ADMINISTRATOR | MANAGE_GUILD))


async def _rank(
    state: State, downstream: Downstream, access: Access, user_id: str
) -> dict[str, Any] | Response[bytes]:
    # Imported here: Pillow and the fonts load with the first card image, not at startup.
    from wee5_gateway.web import rank_card

    try:
        card = await read_card(downstream, access, provide_boards(state), user_id)
    except NotFoundProblem:
        return message(f"<@{user_id}> has no XP here yet.", ephemeral=True)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return message(f"<@{user_id}> has no XP here yet.", ephemeral=True)
    cards = rank_card.provide_rank_cards(state)
    png = await cards.png(await cards.picture(card))
    text = f"<@{user_id}> is rank #{card.rank}, level {card.level}, with {card.xp} XP."
    # A member hidden from the boards sees their own card, but not in front of the channel.
    return with_file(message(text, ephemeral=card.hidden_from_leaderboards), "rank.png", png)


async def _top(state: State, downstream: Downstream, access: Access, period: str) -> dict[str, Any]:
    if period not in PERIODS:
        return message(f"period is one of {', '.join(PERIODS)}.", ephemeral=True)
    boards = provide_boards(state)
    if await boards.visibility(access.community_id) == "admins":
        return message("This community's leaderboard is for its admins only.", ephemeral=True)
    board = await read_leaderboard(
        downstream, access, boards, cast(Period, period), limit=TOP_COUNT
    )
    if not board.entries:
        return message("Nobody has XP here yet.")
    lines = [
        f"**#{e.rank}** {e.display_name or e.username or e.user_id} — level {e.level}, {e.xp} XP"
        for e in board.entries
    ]
    title = "Top members" if period == "all" else f"Top members this {period}"
    return message("", embeds=[{"title": title, "description": "\n".join(lines)}])


async def _give_xp(
    sessions: Sessions,
    downstream: Downstream,
    community_id: str,
    interaction: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    """An admin's XP adjustment through the API's own path (validation, xp's AdjustXp, the
    audit entry). The interaction's id is the idempotency key: the same interaction delivered
    again changes nothing more and is answered with the same totals."""
    invoker = _invoker(interaction)
    if not invoker or not may_adjust_xp(interaction):
        return message(
            "Only the server's admins (Administrator or Manage Server) can give XP.",
            ephemeral=True,
        )
    member = str(options.get("member") or "")
    if not is_member_id(member):
        return message("Nothing changed: choose the member to give XP to.", ephemeral=True)
    if _is_bot(interaction, member):
        return message("Nothing changed: bots do not earn XP.", ephemeral=True)
    interaction_id = str(interaction.get("id") or "")
    if not interaction_id:
        return message("Nothing changed: the interaction has no id.", ephemeral=True)
    try:
        data = msgspec.convert(
            {
                "delta": options.get("amount"),
                "reason": str(options.get("reason") or "").strip(),
                "idempotency_key": f"discord:{interaction_id}",
            },
            XpAdjustmentIn,
        )
    except msgspec.ValidationError as error:
        words = str(error).replace("$.delta", "amount").replace("$.reason", "reason")
        return message(f"Nothing changed: {words}.", ephemeral=True)
    if data.delta == 0:
        return message("Nothing changed: the amount is 0.", ephemeral=True)
    principal = Principal(discord_user_id=invoker)
    audit = Auditor(sessions, Access(principal, community_id, Role.ADMIN, invoker))
    try:
        adjusted = await adjust_xp(downstream, audit, principal, community_id, member, data)
    except grpc.aio.AioRpcError as error:
        if error.code() not in ADJUSTMENT_REFUSALS:
            raise
        return message(f"Nothing changed: {error.details()}", ephemeral=True)
    if data.delta > 0:
        change = f"gave <@{member}> {data.delta} XP"
    else:
        change = f"took {-data.delta} XP from <@{member}>"
    # In the channel: who changed whose XP is no secret in the community (the audit log says
    # it to its owners too).
    return message(
        f"<@{invoker}> {change} ({data.reason}). <@{member}> now has {adjusted.xp} XP, "
        f"level {adjusted.level}."
    )


def _is_bot(interaction: dict[str, Any], user_id: str) -> bool:
    """Whether Discord resolved the user option `user_id` to a bot account."""
    resolved = (interaction.get("data") or {}).get("resolved") or {}
    user = (resolved.get("users") or {}).get(user_id)
    return isinstance(user, dict) and user.get("bot") is True


async def _rewards(downstream: Downstream, community_id: str, user_id: str) -> dict[str, Any]:
    """The community's level rewards, lowest first, each marked unlocked (the invoker reached
    its level: granted, on its way, …) or locked (levels to go). Only the invoker sees it: it
    is their standing, and a granted discount code is theirs."""
    if not is_member_id(user_id):
        return message("WEE5 could not tell who asked.", ephemeral=True)
    level = (await member_standing(downstream, community_id, user_id))["level"]
    standing = await reward_standing(downstream, community_id, user_id, level)
    if not standing.rewards:
        return message("This community has no level rewards yet.", ephemeral=True)
    lines = []
    for step in standing.rewards:
        words, _ = reward_state(step)
        mark = "🔒" if step.state == "ahead" else "✅"
        code = (
            f" — your code: `{step.discount.code}`" if step.discount and step.discount.code else ""
        )
        lines.append(f"{mark} **Level {step.level}**: {describe_reward(step)} · {words}{code}")
    return message(
        f"You are level {level}.",
        ephemeral=True,
        embeds=[{"title": "Level rewards", "description": "\n".join(lines)}],
    )
