"""Credentials: password hashes (argon2), access tokens (JWT), refresh tokens and API keys
(opaque, stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ISSUER = "wee5"
AUDIENCE = "wee5-api"
API_KEY_PREFIX = "wee5_sk_"
# Shown in key listings so owners can tell keys apart; never enough to use the key.
API_KEY_DISPLAY_CHARS = 14
# Verified access tokens kept by `AccessTokens.decode` (all dropped when it is full).
MAX_VERIFIED_TOKENS = 50_000


class Passwords:
    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


class InvalidToken(Exception):
    """The access token is expired, forged, malformed or not for us."""


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    is_platform_admin: bool
    expires_at: datetime
    # The session (refresh-token family) the token was issued in; None for tokens minted
    # outside a session (tests, tools) and for tokens issued before sessions were named.
    session_id: uuid.UUID | None = None


class AccessTokens:
    """Short-lived signed JWTs. Roles are not in the token: they are read per request, so a
    revoked role takes effect at once."""

    def __init__(self, secret: str, ttl: timedelta) -> None:
        self._secret = secret
        self.ttl = ttl
        # Tokens already verified, until they expire: a client sends the same token with every
        # request of its 15 minutes, and checking it again would give the same answer.
        self._verified: dict[str, AccessClaims] = {}

    def mac(self, purpose: str, message: str) -> str:
        """An HMAC-SHA256 (hex) of `message` under this process's signing secret, kept apart
        from other uses by `purpose`."""
        key = hmac.new(self._secret.encode(), purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def issue(
        self,
        account_id: uuid.UUID,
        *,
        is_platform_admin: bool,
        session_id: uuid.UUID | None = None,
    ) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires = now + self.ttl
        claims: dict[str, object] = {
            "sub": str(account_id),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": expires,
            "jti": uuid.uuid4().hex,
            "padm": is_platform_admin,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires

    def decode(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at.timestamp() > time.time():
                return known
            del self._verified[token]
        claims = self._verify(token)
        if len(self._verified) >= MAX_VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            )
            return AccessClaims(
                account_id=uuid.UUID(claims["sub"]),
                is_platform_admin=bool(claims.get("padm", False)),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                session_id=uuid.UUID(claims["sid"]) if "sid" in claims else None,
            )
        except (jwt.PyJWTError, ValueError, KeyError) as error:
            raise InvalidToken(str(error)) from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Opaque tokens and keys are high-entropy, so a fast hash is enough (no salt needed) and
    lets the hash itself be the lookup key."""
    return hashlib.sha256(token.encode()).hexdigest()
