"""A local stand-in for Discord's Gateway (v10) and the REST call a bot makes before it
connects, speaking the real protocol over a real WebSocket, so the bot's library runs unchanged
against it (its REST base URL pointed here; the Gateway URL is what `GET /gateway/bot` says).

- `GET /api/v10/gateway/bot` (`Authorization: Bot <token>`) → `{"url": "ws://…/gateway",
  "shards", "session_start_limit"}`.
- On `/gateway?v=10&encoding=json[&compress=zlib-stream]`: op 10 HELLO with
  `heartbeat_interval`; op 2 IDENTIFY is checked (token, the intents required, shard) and
  answered by op 0 READY (`session_id`, `resume_gateway_url`) and a GUILD_CREATE per guild;
  op 1 HEARTBEAT → op 11 ACK; op 6 RESUME with a known session replays the dispatches after
  the client's `seq` and sends RESUMED (or op 9 INVALID_SESSION false for an unknown one).
- Every dispatch is op 0 with the session's next `s`. The test sends them (`dispatch`,
  `message`, `reaction`), asks for op 7 RECONNECT (`reconnect`), drops the connection without
  a word (`drop`), or replays an old dispatch with a new sequence number (`redeliver`), as
  Discord may after a RESUME.
- `PUT /api/v10/applications/{application_id}/guilds/{guild_id}/commands` (bulk overwrite of a
  guild's slash commands): recorded in `registrations`, answered with the commands as Discord
  answers them (ids, version).
- zlib-stream transport compression (one zlib context per connection, each payload ending in
  a Z_SYNC_FLUSH) when the client asks for it; zstd-stream is refused (close 4000).

Bad IDENTIFYs close the connection with Discord's codes: 4004 authentication failed, 4013
invalid intents, 4014 disallowed intents, 4010 invalid shard, 4005 already authenticated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.conftest import free_port
from wee5_kit.logging import get_logger

log = get_logger("tests.discord_gateway")

API = "/api/v10"
# Discord's intents (gateway-intents in the API docs).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
PRIVILEGED = GUILD_MEMBERS | MESSAGE_CONTENT | (1 << 8)
BOT_USER_ID = "1100000000000000001"


def snowflake() -> str:
    """A fresh Discord id (18-19 digits)."""
    return str(10**18 + uuid.uuid4().int % 10**17)


@dataclass
class Session:
    session_id: str
    shard: list[int]
    seq: int = 0
    # Every dispatch sent in this session, in order: (s, event name, data).
    sent: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Connection:
    ws: web.WebSocketResponse
    compress: bool
    deflate: Any = None
    session: Session | None = None

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if self.compress:
            data = self.deflate.compress(text.encode()) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)


@dataclass
class DiscordGateway:
    # Shaped like Discord's: base64 of the bot's user id, a timestamp part, an HMAC part
    # (hikari reads the bot's id from the first part).
    token: str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GtEsT0.c3RhbmQtaW4tdG9rZW4tbm90LWEtc2VjcmV0"
    # IDENTIFY must ask for at least these; privileged ones beyond `allowed_privileged` are 4014.
    required_intents: int = GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS
    allowed_privileged: int = MESSAGE_CONTENT | GUILD_MEMBERS
    heartbeat_interval_ms: int = 41_250
    # A RESUME replays this many dispatches more than the client missed (at-least-once, as
    # Discord may: the client sees events it already handled again, same `s`).
    replay_extra: int = 0
    shards: int = 1
    # Guilds the bot is in: READY lists them unavailable, then a GUILD_CREATE each.
    guilds: list[str] = field(default_factory=list)
    base_url: str = ""
    identifies: list[dict[str, Any]] = field(default_factory=list)
    resumes: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    closes: list[int] = field(default_factory=list)
    sessions: dict[str, Session] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    rest_calls: list[str] = field(default_factory=list)
    compressions: list[str | None] = field(default_factory=list)
    # REST: messages posted (channel id, body) and DM channels opened (channel id → user id);
    # the next `fail_posts` message posts answer 500.
    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dm_channels: dict[str, str] = field(default_factory=dict)
    fail_posts: int = 0
    # Bulk overwrites of guild commands, in order: (application id, guild id, the commands).
    registrations: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    # The application: routes and serving

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"{API}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{API}/gateway", self._gateway)
        app.router.add_post(f"{API}/channels/{{channel_id}}/messages", self._create_message)
        app.router.add_post(f"{API}/users/@me/channels", self._create_dm)
        app.router.add_put(
            f"{API}/applications/{{application_id}}/guilds/{{guild_id}}/commands",
            self._overwrite_guild_commands,
        )
        app.router.add_get("/gateway", self._socket)
        return app

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    @property
    def api_url(self) -> str:
        return self.base_url + API

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        self.rest_calls.append(f"GET {request.path}")
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response(
            {
                "url": self.ws_url,
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    # Every shard may identify at once (no 5 s start windows in tests).
                    "max_concurrency": self.shards,
                },
            }
        )

    async def _gateway(self, request: web.Request) -> web.Response:
        self.rest_calls.append(f"GET {request.path}")
        return web.json_response({"url": self.ws_url})

    def _authorized(self, request: web.Request) -> bool:
        self.rest_calls.append(f"{request.method} {request.path}")
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _create_message(self, request: web.Request) -> web.Response:
        """`POST /channels/{id}/messages`: the Message Discord answers."""
        if not self._authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        if self.fail_posts:
            self.fail_posts -= 1
            return web.json_response(
                {"message": "500: Internal Server Error", "code": 0}, status=500
            )
        channel_id = request.match_info["channel_id"]
        body = await request.json()
        self.posted.append((channel_id, body))
        await self._notify()
        sent = message_create(
            author_id=BOT_USER_ID,
            channel_id=channel_id,
            guild_id=None,
            content=str(body.get("content", "")),
            bot=True,
        )
        return web.json_response(sent)

    async def _create_dm(self, request: web.Request) -> web.Response:
        """`POST /users/@me/channels` `{"recipient_id"}`: the DM channel."""
        if not self._authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        recipient = str((await request.json())["recipient_id"])
        channel_id = next((c for c, u in self.dm_channels.items() if u == recipient), snowflake())
        self.dm_channels[channel_id] = recipient
        return web.json_response(
            {
                "id": channel_id,
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [user(recipient)],
            }
        )

    async def _overwrite_guild_commands(self, request: web.Request) -> web.Response:
        """`PUT /applications/{id}/guilds/{id}/commands` with the guild's whole command set."""
        if not self._authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        application_id = request.match_info["application_id"]
        guild_id = request.match_info["guild_id"]
        commands = await request.json()
        invalid = [c for c in commands if not valid_command(c)]
        if invalid:
            return web.json_response(
                {"message": "Invalid Form Body", "code": 50035, "errors": invalid}, status=400
            )
        self.registrations.append((application_id, guild_id, commands))
        await self._notify()
        return web.json_response(
            [
                {
                    "id": snowflake(),
                    "application_id": application_id,
                    "guild_id": guild_id,
                    "version": snowflake(),
                    "type": 1,
                    "description": "",
                    "options": [],
                    "default_member_permissions": None,
                    "nsfw": False,
                    **command,
                }
                for command in commands
            ]
        )

    def registered_in(self, guild_id: str) -> list[list[dict[str, Any]]]:
        """The command sets PUT for `guild_id`, in order."""
        return [commands for _, guild, commands in self.registrations if guild == guild_id]

    # The WebSocket protocol

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4096 * 1024)
        compression = request.query.get("compress")
        self.compressions.append(compression)
        await ws.prepare(request)
        if request.query.get("v") != "10" or request.query.get("encoding", "json") != "json":
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        if compression not in (None, "zlib-stream"):
            await ws.close(code=4000, message=b"Unknown compression")
            return ws
        connection = Connection(ws, compress=compression == "zlib-stream")
        if connection.compress:
            connection.deflate = zlib.compressobj()
        self.connections.append(connection)
        try:
            await connection.send(
                {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None}
            )
            async for message in ws:
                # JSON arrives in text or binary frames (hikari sends binary ones).
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._received(connection, json.loads(message.data))
        except Exception:
            log.exception("the Discord Gateway stand-in failed")
            raise
        finally:
            if ws.close_code is not None:
                self.closes.append(ws.close_code)
            await self._notify()
        return ws

    async def _received(self, connection: Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            self.heartbeats += 1
            await connection.send({"op": 11})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            await self._resume(connection, data or {})
        await self._notify()

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        intents = int(data.get("intents", 0))
        shard = data.get("shard") or [0, 1]
        if connection.session is not None:
            await connection.ws.close(code=4005, message=b"Already authenticated")
        elif data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed")
        elif intents & self.required_intents != self.required_intents:
            await connection.ws.close(code=4013, message=b"Invalid intent(s)")
        elif intents & PRIVILEGED & ~self.allowed_privileged:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s)")
        elif not (0 <= shard[0] < shard[1] == self.shards):
            await connection.ws.close(code=4010, message=b"Invalid shard")
        else:
            session = Session(uuid.uuid4().hex, shard)
            self.sessions[session.session_id] = session
            connection.session = session
            guilds = [g for g in self.guilds if (int(g) >> 22) % shard[1] == shard[0]]
            await self._send(connection, "READY", ready(session, guilds, self.ws_url))
            for guild_id in guilds:
                await self._send(connection, "GUILD_CREATE", guild(guild_id))

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        self.resumes.append(data)
        session = self.sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed")
            return
        if session is None:
            await connection.send({"op": 9, "d": False})
            return
        connection.session = session
        after = max(0, int(data.get("seq") or 0) - self.replay_extra)
        for seq, name, event in list(session.sent):
            if seq > after:
                await connection.send({"op": 0, "t": name, "s": seq, "d": event})
        await self._send(connection, "RESUMED", {})

    async def _send(self, connection: Connection, name: str, data: dict[str, Any]) -> int:
        session = connection.session
        assert session is not None
        session.seq += 1
        session.sent.append((session.seq, name, data))
        await connection.send({"op": 0, "t": name, "s": session.seq, "d": data})
        return session.seq

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # What tests do

    def live(self) -> Connection | None:
        """The newest connection that is identified or resumed and still open."""
        for connection in reversed(self.connections):
            if connection.session is not None and not connection.ws.closed:
                return connection
        return None

    async def wait_for(self, check: Any, within: float = 30.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(check)

    async def wait_live(self, within: float = 30.0) -> Connection:
        await self.wait_for(lambda: self.live() is not None, within)
        connection = self.live()
        assert connection is not None
        return connection

    async def send_to(self, connection: Connection, name: str, data: dict[str, Any]) -> int:
        """A dispatch on one given connection (e.g. one shard's)."""
        return await self._send(connection, name, data)

    async def dispatch(self, name: str, data: dict[str, Any]) -> int:
        """Sends an op 0 dispatch on the live connection; its sequence number."""
        return await self._send(await self.wait_live(), name, data)

    async def message(self, **fields: Any) -> dict[str, Any]:
        data = message_create(**fields)
        await self.dispatch("MESSAGE_CREATE", data)
        return data

    async def reaction(self, **fields: Any) -> dict[str, Any]:
        data = reaction_add(**fields)
        await self.dispatch("MESSAGE_REACTION_ADD", data)
        return data

    async def redeliver(self, data: dict[str, Any], name: str = "MESSAGE_CREATE") -> int:
        """The same event again under a new sequence number (at-least-once delivery)."""
        return await self.dispatch(name, data)

    async def reconnect(self, during: Sequence[tuple[str, dict[str, Any]]] = ()) -> Connection:
        """Op 7 RECONNECT: the client closes and resumes on a new connection. `during` are
        dispatches that happen meanwhile: kept in the session, sent when it resumes."""
        old = await self.wait_live()
        await old.send({"op": 7, "d": None})
        return await self._resumed_after(old, during)

    async def drop(
        self, code: int = 4000, during: Sequence[tuple[str, dict[str, Any]]] = ()
    ) -> Connection:
        """Closes the live connection without a RECONNECT (a resumable close code); waits
        until the client resumed on a new one."""
        old = await self.wait_live()
        await old.ws.close(code=code, message=b"Unknown error")
        return await self._resumed_after(old, during)

    async def _resumed_after(
        self, old: Connection, during: Sequence[tuple[str, dict[str, Any]]]
    ) -> Connection:
        resumes = len(self.resumes)
        session = old.session
        assert session is not None
        for name, data in during:
            session.seq += 1
            session.sent.append((session.seq, name, data))
        await self.wait_for(
            lambda: len(self.resumes) > resumes and self.live() not in (None, old), within=60
        )
        return await self.wait_live()


@asynccontextmanager
async def serving_gateway(gateway: DiscordGateway) -> AsyncIterator[DiscordGateway]:
    """Serves the stand-in on a free port in this event loop."""
    runner = web.AppRunner(gateway.app(), handle_signals=False)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    gateway.base_url = f"http://127.0.0.1:{port}"
    try:
        yield gateway
    finally:
        for connection in gateway.connections:
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001)
        await runner.cleanup()


# Discord's limits on a command's (and an option's) name and description.
COMMAND_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


def valid_command(command: dict[str, Any]) -> bool:
    """A name and description Discord takes, for the command and each option."""
    parts = [command, *command.get("options", [])]
    return all(
        COMMAND_NAME.fullmatch(str(part.get("name", "")))
        and 1 <= len(str(part.get("description", ""))) <= 100
        for part in parts
    )


# Payloads, shaped as in Discord's API reference


def user(user_id: str, username: str = "member", *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": username,
        "discriminator": "0",
        "global_name": username.title(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def ready(session: Session, guilds: list[str], ws_url: str) -> dict[str, Any]:
    return {
        "v": 10,
        "user": {
            **user(BOT_USER_ID, "wee5", bot=True),
            "mfa_enabled": False,
            "verified": True,
            "flags": 0,
            "email": None,
        },
        "private_channels": [],
        "guilds": [{"id": g, "unavailable": True} for g in guilds],
        "session_id": session.session_id,
        "resume_gateway_url": ws_url,
        "shard": session.shard,
        "application": {"id": BOT_USER_ID, "flags": 0},
    }


def guild(guild_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": guild_id,
        "name": f"Guild {guild_id[-4:]}",
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": "1100000000000000002",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            {
                "id": guild_id,
                "name": "@everyone",
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": 0,
                "permissions": "0",
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": now,
        "large": False,
        "unavailable": False,
        "member_count": 2,
        "members": [],
        "channels": [],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
    }


def member(user_data: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [],
        "nick": None,
        "avatar": None,
        "joined_at": "2026-01-01T00:00:00+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if user_data is not None:
        data["user"] = user_data
    return data


def message_create(
    *,
    author_id: str,
    channel_id: str,
    guild_id: str | None,
    content: str = "hello there",
    message_id: str | None = None,
    bot: bool = False,
    webhook_id: str | None = None,
    username: str = "member",
    message_type: int = 0,
) -> dict[str, Any]:
    """MESSAGE_CREATE's data; without `guild_id` a DM (no `member`). `message_type` 7 is
    Discord's "member joined" system message."""
    author = user(author_id, username, bot=bot)
    data: dict[str, Any] = {
        "id": message_id or snowflake(),
        "type": message_type,
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": datetime.now(UTC).isoformat(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "flags": 0,
        "components": [],
        "nonce": None,
    }
    if webhook_id is not None:
        data["webhook_id"] = webhook_id
    if guild_id is not None:
        data["guild_id"] = guild_id
        if webhook_id is None:
            data["member"] = member()
    return data


def member_add(guild_id: str, user_id: str, *, bot: bool = False) -> dict[str, Any]:
    """GUILD_MEMBER_ADD's data: the guild member and its guild."""
    return {**member(user(user_id, "newcomer", bot=bot)), "guild_id": guild_id}


def reaction_add(
    *,
    user_id: str,
    channel_id: str,
    message_id: str,
    guild_id: str | None,
    emoji: str = "👍",
    bot: bool = False,
) -> dict[str, Any]:
    """MESSAGE_REACTION_ADD's data; in a guild with the reacting `member`."""
    data: dict[str, Any] = {
        "user_id": user_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "emoji": {"id": None, "name": emoji},
        "burst": False,
        "type": 0,
        "message_author_id": "1100000000000000003",
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
        data["member"] = member(user(user_id, "reactor", bot=bot))
    return data
