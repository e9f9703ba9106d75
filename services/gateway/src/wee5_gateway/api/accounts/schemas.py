"""Request and response bodies of sign-up, sign-in, token refresh and the caller's account:
its password, email, sessions and deletion."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

# Deliberately loose (one @, no spaces, a dot in the domain): the only real check of an address
# is mail arriving there. Surrounding spaces are allowed here and stripped before use.
EMAIL_PATTERN = r"^\s*[^@\s]{1,64}@[^@\s]+\.[^@\s]+\s*$"
MIN_PASSWORD_LENGTH = 10
# argon2 takes any length; the bound keeps a request from making the server hash megabytes.
MAX_PASSWORD_LENGTH = 256

Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=320,
        pattern=EMAIL_PATTERN,
        description="Compared case-insensitively; stored trimmed and lower-cased.",
        examples=["ada@example.com"],
    ),
]
NewPassword = Annotated[
    str,
    msgspec.Meta(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    ),
]
DisplayName = Annotated[str, msgspec.Meta(max_length=100)]
# Sign-in checks nothing about the shape of what it is given: any mismatch is the same 401.
LoginEmail = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
LoginPassword = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: NewPassword
    display_name: DisplayName | None = None


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: LoginEmail
    password: LoginPassword


class RefreshTokenBody(msgspec.Struct, forbid_unknown_fields=True):
    # Optional: browsers signed in with cookies send the `wee5_refresh` cookie instead.
    refresh_token: OpaqueToken | None = None


class AccountView(msgspec.Struct):
    id: uuid.UUID
    email: str
    display_name: str
    is_platform_admin: bool


class TokenGrant(msgspec.Struct):
    """A new session, or the next tokens of one: a short-lived access token (JWT) for
    `Authorization: Bearer`, and a single-use refresh token to get the next pair."""

    account: AccountView
    access_token: str
    token_type: Literal["Bearer"]
    # Seconds until the access token expires.
    expires_in: int
    refresh_token: str
    # Seconds until the refresh token expires (each refresh starts a new one).
    refresh_expires_in: int


class CommunityRoleView(msgspec.Struct):
    community_id: str
    role: Literal["member", "admin", "owner"]
    # The account's user id inside the community; null until linked.
    member_user_id: str | None


class Me(msgspec.Struct):
    account: AccountView
    roles: list[CommunityRoleView]


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: LoginPassword
    new_password: NewPassword


class EmailChange(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    current_password: LoginPassword


class AccountDeletion(msgspec.Struct, forbid_unknown_fields=True):
    current_password: LoginPassword


class SessionView(msgspec.Struct):
    """A sign-in that can still refresh: a family of refresh tokens."""

    id: uuid.UUID
    # When the session signed in, and when it last got tokens (sign-in or refresh).
    started_at: datetime
    last_used_at: datetime
    # When its refresh token expires unless it refreshes before.
    expires_at: datetime
    # As sent when the session last got tokens; null for sessions older than this record.
    user_agent: str | None
    client_ip: str | None
    # The session of the access token that asked.
    current: bool
