"""Request and response bodies of roles, API keys, the and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

RoleName = Literal["member", "admin", "owner"]
Scope = Literal["xp:read", "xp:admin", "activities:write"]
ShortId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class RoleGrant(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName
    # The account's own user id inside the community (e.g. Whop `user_…`, a Discord id).
    member_user_id: ShortId | None = None


class RoleView(msgspec.Struct):
    community_id: str
    account_id: uuid.UUID
    role: RoleName
    member_user_id: str | None
    created_at: datetime


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=8)]
    # The key stops working after this many days; left out: until revoked.
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class ApiKeyView(msgspec.Struct):
    id: uuid.UUID
    community_id: str
    name: str
    scopes: list[str]
    # The key's first characters, to tell keys apart; never enough to use one.
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    # The last request it authenticated (stamped at most about once a minute).
    last_used_at: datetime | None
    # When it stops working; null: until revoked.
    expires_at: datetime | None = None


class ApiKeyCreated(ApiKeyView):
    # The key itself. Shown this once; only its hash is kept.
    key: str = ""


class AuditEntryView(msgspec.Struct):
    id: int
    community_id: str | None
    actor_account_id: uuid.UUID | None
    actor_api_key_id: uuid.UUID | None
    # A Whop user acting from Whop's iframe.
    actor_whop_user_id: str | None
    action: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    created_at: datetime
    # done; or pending: recorded before the service behind the gateway was asked to make the
    # change, and its outcome never came back (`after` then holds what was asked).
    status: Literal["pending", "done"] = "done"
    # A Discord user acting through a slash command in the community's server (/give-xp).
    actor_discord_user_id: str | None = None


class AuditPage(msgspec.Struct):
    entries: list[AuditEntryView]
    # Pass back as `cursor` for older entries; null on the last page.
    next_cursor: str | None
