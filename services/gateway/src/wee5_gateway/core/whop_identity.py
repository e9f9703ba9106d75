"""Who a Whop user is: the `x-whop-user-token` Whop adds to every request its iframe makes.

The token is an ES256 JWT from Whop's proxy (issuer `urn:whopcom:exp-proxy`, audience the app
id, subject the Whop user id). Its public keys come from Whop's JWKS, picked by the header's
`kid`, fetched with httpx (never the blocking helper Whop's SDK uses) and kept; an unknown `kid`
refetches them at most every 30 s, so a key rotation is picked up without a restart and a flood
of made-up kids costs Whop nothing. A fixed PEM key replaces the JWKS when configured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm

from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.whop")

WHOP_TOKEN_HEADER = "x-whop-user-token"
WHOP_TOKEN_ISSUER = "urn:whopcom:exp-proxy"
# The official helper refetches Whop's keys at most this often when a token names a new kid.
JWKS_REFETCH_SECONDS = 30.0
_JWKS_TIMEOUT_SECONDS = 5.0


class InvalidWhopToken(Exception):
    """The token is not one Whop's proxy issued for this app, or it expired."""


@dataclass(frozen=True)
class WhopUser:
    user_id: str


class WhopJwks:
    """Whop's public keys by `kid`, fetched asynchronously and cached."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client
        self.keys: dict[str, Any] = {}
        self.fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any | None:
        """The public key of `kid`; an unknown kid refetches at most every 30 s."""
        if kid in self.keys:
            return self.keys[kid]
        async with self._lock:
            if kid not in self.keys and self._may_refetch():
                await self._fetch()
        return self.keys.get(kid)

    def _may_refetch(self) -> bool:
        return self.fetched_at is None or time.monotonic() - self.fetched_at >= JWKS_REFETCH_SECONDS

    async def _fetch(self) -> None:
        self.fetched_at = time.monotonic()
        try:
            response = await self.client.get(self.url, timeout=_JWKS_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            # Keys already known keep working; a new kid waits for the next refetch.
            log.warning("whop jwks fetch failed", url=self.url, error=str(error))
            return
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = ECAlgorithm.from_jwk(jwk)
            except (jwt.InvalidKeyError, ValueError, KeyError):
                log.warning("whop jwks key unreadable", kid=jwk.get("kid"))
        self.keys = keys


def fixed_public_key(pem: str) -> Any:
    """The EC public key of a PEM text; ValueError naming the setting when it is not one."""
    try:
        return ECAlgorithm(ECAlgorithm.SHA256).prepare_key(pem)
    except (jwt.InvalidKeyError, ValueError, TypeError):
        raise ValueError("WEE5_WHOP_PUBLIC_KEY is not a PEM EC (P-256) public key") from None


class WhopTokenVerifier:
    """Checks `x-whop-user-token`: ES256 only, Whop's issuer, this app as the one audience
    (a string; a list is refused), not expired, signed by a key of Whop's JWKS or the fixed key."""

    def __init__(self, app_id: str, *, jwks: WhopJwks | None, public_key_pem: str | None) -> None:
        self.app_id = app_id
        self.jwks = jwks
        self.fixed_key = fixed_public_key(public_key_pem) if public_key_pem else None

    async def verify(self, token: str) -> WhopUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidWhopToken("the Whop user token is not a JWT") from None
        if header.get("alg") != "ES256":
            raise InvalidWhopToken("the Whop user token is not signed with ES256")
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                issuer=WHOP_TOKEN_ISSUER,
                options={"require": ["exp", "sub", "aud", "iss"], "verify_aud": False},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidWhopToken(f"the Whop user token is invalid ({error})") from None
        # PyJWT accepts a list audience containing ours; Whop sends a string, so only that counts.
        if claims.get("aud") != self.app_id:
            raise InvalidWhopToken("the Whop user token is for another app")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.startswith("user_"):
            raise InvalidWhopToken("the Whop user token names no Whop user")
        return WhopUser(subject)

    async def _key(self, kid: object) -> Any:
        if self.fixed_key is not None:
            return self.fixed_key
        if not isinstance(kid, str) or self.jwks is None:
            raise InvalidWhopToken("the Whop user token names no key")
        key = await self.jwks.key(kid)
        if key is None:
            raise InvalidWhopToken("the Whop user token is signed by an unknown key")
        return key
