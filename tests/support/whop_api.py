"""A local HTTP server speaking Whop's REST API (v1) for the calls rewards makes, and one
speaking Discord's role endpoints and the bot's OAuth2 install flow: real HTTP on a free port,
real JSON, scripted failures.

Whop: `GET /api/v1/memberships/{id}`, `POST /api/v1/memberships/{id}/add_free_days`
`{"free_days": n}` (moves `renewal_period_end` by n days and returns the Membership),
`POST /api/v1/promo_codes` (the create fields; a taken code answers 400) and
`GET /api/v1/promo_codes?company_id=…` (cursor pages `{"data", "page_info"}`); for the gateway's
Whop sign-in, `GET /api/v1/users/{id}/access/{resource}` (`{"has_access", "access_level"}`),
`GET /api/v1/experiences/{id}` and `GET /api/v1/experiences?company_id=…` (cursor pages), and
the JWKS at `/.well-known/jwks.json` (no key needed). Every API call needs
`Authorization: Bearer <key>`. The server does not de-duplicate by `Idempotency-Key`
(whether Whop does for these calls is not documented), so only our own checks prevent a double
grant here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.conftest import free_port

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, list[str]]
    # Whop carried the write out (whatever the client then heard).
    applied: bool = False
    # The path as it arrived on the wire, percent-encoding intact.
    raw_path: str = ""


@dataclass
class FakeWhop:
    """Whop's state and a script of failures per operation (`add_free_days`, `create_promo`,
    `get_membership`, `list_promos`, `post_message`, `send_notification`): each call pops the next behaviour, if any:
    "500", "429", "timeout_after_apply" (applies, then answers too late), "hold" (applies, then
    never answers until `release` is set)."""

    api_key: str = "whop_test_key"
    memberships: dict[str, dict[str, Any]] = field(default_factory=dict)
    promo_codes: list[dict[str, Any]] = field(default_factory=list)
    # Whop sign-in: (user id, experience id) -> "admin" | "customer" (else "no_access");
    # experiences by id; the public keys served as the JWKS.
    access_levels: dict[tuple[str, str], str] = field(default_factory=dict)
    experiences: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    calls: list[Call] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Every call answers 503 while Whop is "down".
    down: bool = False
    late_seconds: float = 3.0
    applied: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    # `GET /api/v1/users/{id}`: Whop's public user objects by id (see add_user).
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Chat messages posted (`POST /messages`, newest last) and push notifications sent.
    messages: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def add_membership(self, company_id: str = "biz_test", days_left: int = 10) -> str:
        membership_id = f"mem_{uuid.uuid4().hex[:14]}"
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_left)
        self.memberships[membership_id] = {
            "id": membership_id,
            "status": "active",
            "company": {"id": company_id, "title": "Test Co"},
            "plan": {"id": "plan_test"},
            "product": {"id": "prod_test", "title": "Community"},
            "user": {"id": "user_x", "username": "x"},
            "renewal_period_start": (end - timedelta(days=30)).isoformat(),
            "renewal_period_end": end.isoformat(),
            "cancel_at_period_end": False,
            "created_at": (end - timedelta(days=60)).isoformat(),
            "metadata": {},
        }
        return membership_id

    def add_experience(
        self, company_id: str, name: str = "Chat", experience_id: str | None = None
    ) -> str:
        experience_id = experience_id or f"exp_{uuid.uuid4().hex[:14]}"
        self.experiences[experience_id] = {
            "id": experience_id,
            "name": name,
            "order": str(len(self.experiences)),
            "created_at": datetime.now(UTC).isoformat(),
            "app": {"id": "app_wee5", "name": "WEE5"},
            "company": {"id": company_id, "title": "Test Co", "route": "test-co"},
        }
        return experience_id

    def period_end(self, membership_id: str) -> datetime:
        return datetime.fromisoformat(self.memberships[membership_id]["renewal_period_end"])

    def applications(self, operation: str) -> list[Call]:
        """The calls of an operation that Whop applied."""
        return [call for call in self.calls if call.applied and _op(call) == operation]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        call = Call(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=json.loads(body) if body else None,
            query=parse_qs(scope.get("query_string", b"").decode()),
            raw_path=_raw_path(scope),
        )
        self.calls.append(call)
        status, payload = await self._answer(call)
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _answer(self, call: Call) -> tuple[int, Any]:
        if call.path == "/.well-known/jwks.json":
            return 200, self.jwks
        if call.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"type": "unauthorized", "message": "Invalid API key"}}
        if self.down:
            return 503, {"error": {"message": "Service Unavailable"}}
        operation = _op(call)
        behaviour = self.script[operation].pop(0) if self.script[operation] else "ok"
        if behaviour == "500":
            return 500, {"error": {"message": "Internal server error"}}
        if behaviour == "429":
            return 429, {"error": {"message": "Too many requests"}}
        sending = operation in ("post_message", "list_messages", "send_notification")
        status, payload = self._send(call, operation) if sending else self._apply(call, operation)
        if status < 300 and call.method == "POST":
            call.applied = True
            self.applied.set()
        if behaviour == "timeout_after_apply":
            await asyncio.sleep(self.late_seconds)
        elif behaviour == "hold":
            await self.release.wait()
        return status, payload

    def _apply(self, call: Call, operation: str) -> tuple[int, Any]:
        parts = call.path.removeprefix("/api/v1/").split("/")
        if operation == "get_membership":
            membership = self.memberships.get(parts[1])
            if membership is None:
                return 404, {"error": {"type": "not_found", "message": "Membership not found"}}
            return 200, membership
        if operation == "add_free_days":
            membership = self.memberships.get(parts[1])
            if membership is None:
                return 404, {"error": {"type": "not_found", "message": "Membership not found"}}
            days = (call.body or {}).get("free_days")
            if not isinstance(days, int) or not 1 <= days <= 1095:
                return 422, {"error": {"message": "free_days must be between 1 and 1095"}}
            end = datetime.fromisoformat(membership["renewal_period_end"]) + timedelta(days=days)
            membership["renewal_period_end"] = end.isoformat()
            return 200, membership
        if operation == "create_promo":
            body = call.body or {}
            required = (
                "amount_off",
                "base_currency",
                "code",
                "company_id",
                "new_users_only",
                "promo_duration_months",
                "promo_type",
            )
            missing = [name for name in required if name not in body]
            if missing or body.get("promo_type") not in ("percentage", "flat_amount"):
                return 422, {"error": {"message": f"invalid promo code: missing {missing}"}}
            if any(p["code"] == body["code"] for p in self.promo_codes):
                return 400, {"error": {"message": "A promo code with this code already exists"}}
            promo = {
                "id": f"promo_{uuid.uuid4().hex[:12]}",
                "code": body["code"],
                "amount_off": body["amount_off"],
                "promo_type": body["promo_type"],
                "currency": body["base_currency"],
                "promo_duration_months": body["promo_duration_months"],
                "new_users_only": body["new_users_only"],
                "one_per_customer": body.get("one_per_customer", False),
                "expires_at": body.get("expires_at"),
                "stock": body.get("stock", 0),
                "status": "active",
                "uses": 0,
                "company_id": body["company_id"],
                "created_at": datetime.now(UTC).isoformat(),
            }
            self.promo_codes.append(promo)
            return 200, promo
        if operation in ("check_access", "get_experience", "list_experiences"):
            return self._sign_in(call, parts, operation)
        if operation == "list_promos":
            company = (call.query.get("company_id") or [""])[0]
            codes = [p for p in self.promo_codes if p["company_id"] == company]
            return 200, _page(codes, call.query)
        if operation == "get_user":
            return _user_answer(self.users, parts[1])
        return 404, {"error": {"message": f"no route {call.method} {call.path}"}}

    def _send(self, call: Call, operation: str) -> tuple[int, Any]:
        """Messages (`POST`/`GET /messages`) and push notifications (`POST /notifications`)."""
        body = call.body or {}
        if operation == "list_messages":
            channel = (call.query.get("channel_id") or [""])[0]
            newest_first = [m for m in reversed(self.messages) if m["channel_id"] == channel]
            return 200, _page(newest_first, call.query)
        if operation == "post_message":
            if not body.get("channel_id") or not body.get("content"):
                return 422, {"error": {"message": "channel_id and content are required"}}
            message = {
                "id": f"msg_{uuid.uuid4().hex[:12]}",
                "channel_id": body["channel_id"],
                "content": body["content"],
                "created_at": datetime.now(UTC).isoformat(),
                "user": {"id": "user_app", "username": "wee5"},
            }
            self.messages.append(message)
            return 200, message
        if not body.get("experience_id") or not body.get("title") or not body.get("content"):
            return 422, {"error": {"message": "experience_id, title and content are required"}}
        self.notifications.append(body)
        return 200, {"success": True}

    def _sign_in(self, call: Call, parts: list[str], operation: str) -> tuple[int, Any]:
        """The calls of the gateway's Whop sign-in: access checks and experiences."""
        if operation == "check_access":
            level = self.access_levels.get((parts[1], parts[3]), "no_access")
            return 200, {"has_access": level != "no_access", "access_level": level}
        if operation == "get_experience":
            experience = self.experiences.get(parts[1])
            if experience is None:
                return 404, {"error": {"type": "not_found", "message": "Experience not found"}}
            return 200, experience
        company = (call.query.get("company_id") or [""])[0]
        mine = [e for e in self.experiences.values() if e["company"]["id"] == company]
        return 200, _page(mine, call.query)


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """Whop's cursor page: `first` items after the `after` cursor."""
    first = int((query.get("first") or ["10"])[0])
    start = int((query.get("after") or ["0"])[0])
    more = start + first < len(items)
    return {
        "data": items[start : start + first],
        "page_info": {"end_cursor": str(start + first) if more else None, "has_next_page": more},
    }


# --- users: GET /api/v1/users/{id} -----------------------------------------------------------


def whop_user(user_id: str, name: str | None, username: str, picture: str | None) -> dict[str, Any]:
    """A user as Whop's users API answers it: `{id, username, name, profile_picture: {url}?}`."""
    return {
        "id": user_id,
        "username": username,
        "name": name,
        "profile_picture": {"url": picture} if picture else None,
        "bio": None,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _user_answer(users: dict[str, dict[str, Any]], user_id: str) -> tuple[int, Any]:
    user = users.get(user_id)
    if user is None:
        return 404, {"error": {"type": "not_found", "message": "User not found"}}
    return 200, user


def _op(call: Call) -> str:
    parts = call.path.removeprefix("/api/v1/").split("/")
    if parts[0] == "users" and len(parts) == 4 and parts[2] == "access":
        return "check_access"
    if parts[0] == "experiences":
        return "get_experience" if len(parts) == 2 else "list_experiences"
    if parts[0] == "users" and len(parts) == 2 and call.method == "GET":
        return "get_user"
    if parts[0] == "memberships" and call.method == "GET":
        return "get_membership"
    if parts[0] == "memberships" and parts[-1] == "add_free_days":
        return "add_free_days"
    if parts[0] == "promo_codes" and call.method == "POST":
        return "create_promo"
    if parts[0] == "promo_codes":
        return "list_promos"
    if parts[0] == "messages":
        return "post_message" if call.method == "POST" else "list_messages"
    if parts[0] == "notifications" and call.method == "POST":
        return "send_notification"
    return "unknown"


@dataclass
class DiscordInstall:
    """One run of the bot's OAuth2 install flow as Discord remembers it: the code it handed to
    the redirect, the guild the bot was added to, and the installer's guilds as
    `GET /users/@me/guilds` lists them (`{id, name, icon, owner, permissions, features}`)."""

    guild_id: str
    user_guilds: list[dict[str, Any]]
    redirect_uri: str
    access_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    # For a sign-in (scopes `identify guilds`): the user as `GET /users/@me` answers it; no
    # guild is named in the token answer then.
    user: dict[str, Any] | None = None


@dataclass
class FakeDiscord:
    """Discord's REST API v10 for what WEE5 calls, with `Authorization: Bot <token>`:
    `PUT /guilds/{guild}/members/{user}/roles/{role}` (204), its `DELETE` (204, the role taken;
    idempotent as Discord's) and `GET /guilds/{guild}/roles`
    (the role objects; 404 `Unknown Guild`, code 10004, for a guild the bot is not in), with
    scripted answers: "429" (body `retry_after`), "500". And the bot's OAuth2 install flow:
    `POST /oauth2/token` (form `grant_type=authorization_code`, `code`, `redirect_uri`; client
    id and secret by HTTP Basic) answers `{access_token, token_type, expires_in, refresh_token,
    scope, guild}`, and `GET /users/@me/guilds` with `Authorization: Bearer <access token>`;
    the sign-in flow (`sign_in`, scopes `identify guilds`: no `guild` in the token answer) adds
    `GET /users/@me` (`{id, username, global_name, avatar}`).
    `calls` keep the raw path as it arrived (percent-encoding intact). Messages:
    `POST /users/@me/channels` `{recipient_id}` opens a DM channel, `POST
    /channels/{channel}/messages` `{content, nonce, enforce_nonce, allowed_mentions}` posts
    (with `enforce_nonce`, a nonce seen in the channel answers the message it created); script
    "500_after_post" posts, then answers 500 (the answer lost)."""

    token: str = "discord_test_token"
    client_id: str = "1100000000000000001"
    client_secret: str = "discord_client_secret"
    roles: set[tuple[str, str, str]] = field(default_factory=set)
    # guild id -> the ids of its roles (the guild's own id is its @everyone role)
    guild_roles: dict[str, set[str]] = field(default_factory=dict)
    installs: dict[str, DiscordInstall] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    retry_after: float = 0.05
    base_url: str = ""
    # Messages posted, oldest first (with their `channel_id`, `nonce`, `allowed_mentions`).
    messages: list[dict[str, Any]] = field(default_factory=list)
    # DM channel id -> the user it is with.
    dm_channels: dict[str, str] = field(default_factory=dict)

    def add_guild(self, guild_id: str, *role_ids: str) -> None:
        self.guild_roles[guild_id] = {guild_id, *role_ids}

    def install(
        self, guild_id: str, redirect_uri: str, *, permissions: int, owner: bool = False
    ) -> str:
        """The bot added to `guild_id` by a user with these permissions there: the code Discord
        puts on the redirect."""
        code = uuid.uuid4().hex
        self.installs[code] = DiscordInstall(
            guild_id,
            [
                {
                    "id": guild_id,
                    "name": "Test server",
                    "icon": None,
                    "owner": owner,
                    "permissions": str(permissions),
                    "features": [],
                }
            ],
            redirect_uri,
        )
        self.guild_roles.setdefault(guild_id, {guild_id})
        return code

    def sign_in(
        self, user_id: str, redirect_uri: str, guilds: list[dict[str, Any]], *, name: str = ""
    ) -> str:
        """A user who approved the sign-in (`identify guilds`), in these guilds (as `GET
        /users/@me/guilds` lists them): the code Discord puts on the redirect."""
        code = uuid.uuid4().hex
        user = {"id": user_id, "username": name or f"user{user_id[-4:]}", "avatar": None}
        user["global_name"] = name or None
        self.installs[code] = DiscordInstall("", guilds, redirect_uri, user=user)
        return code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        call = Call(scope["method"], scope["path"], headers, None, {}, raw_path=_raw_path(scope))
        if headers.get("content-type", "").startswith("application/json"):
            call.body = json.loads(body)
        else:
            call.query = parse_qs(body.decode()) if body else {}
        self.calls.append(call)
        status, payload, extra = self._answer(call, scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": json.dumps(payload).encode() if payload is not None else b"",
            }
        )

    def _answer(self, call: Call, path: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        parts = path.removeprefix("/api/v10/").split("/")
        if parts == ["oauth2", "token"]:
            return self._token(call)
        if parts in (["users", "@me", "guilds"], ["users", "@me"]) and call.method == "GET":
            return self._with_bearer(call, parts[-1])
        if call.headers.get("authorization") != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, []
        behaviour = self.script.pop(0) if self.script else "ok"
        if behaviour == "429":
            return (
                429,
                {
                    "message": "You are being rate limited.",
                    "retry_after": self.retry_after,
                    "global": False,
                },
                [(b"retry-after", b"1"), (b"x-ratelimit-remaining", b"0")],
            )
        if behaviour == "500":
            return 500, {"message": "500: Internal Server Error", "code": 0}, []
        if call.method == "POST" and parts == ["users", "@me", "channels"]:
            channel_id = str(1200000000000000000 + len(self.dm_channels))
            self.dm_channels[channel_id] = str((call.body or {}).get("recipient_id"))
            return 200, {"id": channel_id, "type": 1}, []
        if call.method == "POST" and len(parts) == 3 and parts[::2] == ["channels", "messages"]:
            status, message = self._post_message(parts[1], call.body or {})
            if behaviour == "500_after_post":
                return 500, {"message": "500: Internal Server Error", "code": 0}, []
            return status, message, []
        if (
            call.method == "GET"
            and len(parts) == 3
            and parts[0] == "guilds"
            and parts[2] == "roles"
        ):
            if parts[1] not in self.guild_roles:
                return 404, {"message": "Unknown Guild", "code": 10004}, []
            roles = [_role(role_id, parts[1]) for role_id in sorted(self.guild_roles[parts[1]])]
            return 200, roles, []
        return self._member_role(call.method, parts)

    def _member_role(self, method: str, parts: list[str]) -> tuple[int, Any, list[Any]]:
        """`PUT` (give) or `DELETE` (take) `/guilds/{guild}/members/{user}/roles/{role}`."""
        if (
            method not in ("PUT", "DELETE")
            or len(parts) != 6
            or parts[::2]
            != [
                "guilds",
                "members",
                "roles",
            ]
        ):
            return 404, {"message": "404: Not Found", "code": 0}, []
        if method == "PUT":
            self.roles.add((parts[1], parts[3], parts[5]))
        else:
            self.roles.discard((parts[1], parts[3], parts[5]))
        return 204, None, []

    def _post_message(self, channel_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("content"):
            return 400, {"message": "Cannot send an empty message", "code": 50006}
        nonce = body.get("nonce")
        if body.get("enforce_nonce") and nonce is not None:
            for message in self.messages:
                if message["channel_id"] == channel_id and message["nonce"] == nonce:
                    return 200, message
        message = {
            "id": str(1300000000000000000 + len(self.messages)),
            "channel_id": channel_id,
            "content": body["content"],
            "nonce": nonce,
            "allowed_mentions": body.get("allowed_mentions"),
        }
        self.messages.append(message)
        return 200, message

    def _token(self, call: Call) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if call.method != "POST" or call.headers.get("authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client"}, []
        form = {name: values[0] for name, values in call.query.items()}
        install = self.installs.pop(form.get("code", ""), None)
        if (
            form.get("grant_type") != "authorization_code"
            or install is None
            or install.redirect_uri != form.get("redirect_uri")
        ):
            return 400, {"error": "invalid_grant", "error_description": "Invalid code"}, []
        self.installs[install.access_token] = install
        answer: dict[str, Any] = {
            "access_token": install.access_token,
            "token_type": "Bearer",
            "expires_in": 604800,
            "refresh_token": uuid.uuid4().hex,
            "scope": "identify guilds"
            if install.user is not None
            else "bot applications.commands guilds",
        }
        if install.user is None:
            answer["guild"] = {"id": install.guild_id, "name": "Test server"}
        return 200, answer, []

    def _with_bearer(self, call: Call, what: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        """`GET /users/@me/guilds` (`what` = "guilds") or `GET /users/@me` (identify scope)."""
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        install = self.installs.get(token)
        answer: Any = install.user_guilds if what == "guilds" and install else None
        if install is not None and what == "@me":
            answer = install.user
        if answer is None:
            return 401, {"message": "401: Unauthorized", "code": 0}, []
        return 200, answer, []


def _raw_path(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    return raw.decode() if raw else str(scope["path"])


def _role(role_id: str, guild_id: str) -> dict[str, Any]:
    """A role object as `GET /guilds/{guild}/roles` lists it."""
    return {
        "id": role_id,
        "name": "@everyone" if role_id == guild_id else f"role {role_id}",
        "color": 0,
        "hoist": False,
        "position": 0 if role_id == guild_id else 1,
        "permissions": "0",
        "managed": False,
        "mentionable": False,
    }


@asynccontextmanager
async def serving(app: Any, prefix: str) -> AsyncIterator[str]:
    """Serves `app` on a free port in this event loop; yields its base URL + `prefix`."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                raise AssertionError("the fake provider did not start")
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        server.should_exit = True
        if isinstance(app, FakeWhop):
            app.release.set()
        await task
