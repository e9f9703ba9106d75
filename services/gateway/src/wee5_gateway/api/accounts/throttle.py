"""Sign-in limits that follow the account rather than the address.

The per-IP budget (core/protection/rate_limits.py) stops one address; an attacker with many
addresses (or a client allowed to name its own in X-Forwarded-For) rotates past it. So each
email and account has budgets of its own, counted whatever address asks:

- login: failed sign-ins per email (`rate_limit_login_failures_per_email`). Only failures
  count, so signing in correctly never uses the budget. Past it, sign-in to that email is
  refused (429, before the password is checked) for the rest of the window — except from a
  browser that signed in to that email before: it carries the `wee5_device` cookie, an HMAC
  of the email issued only after a correct password. An attacker who exhausts a victim's
  budget therefore locks out only the devices the victim never used; the victim's own
  browser still signs in. The budget applies to any email, known or not, so a 429 says
  nothing about whether an account exists.
- register: attempts per email (`rate_limit_register_per_email`).
- refresh: refreshes per account (`rate_limit_refresh_per_account`), counted before the
  presented token is spent, so a refused refresh leaves the session as it was.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.problems import RateLimited
from wee5_gateway.core.protection.rate_limits import Budget, RateLimits, RouteClass, rate_limits_of
from wee5_gateway.core.security import AccessTokens

DEVICE_COOKIE = "wee5_device"
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie
_DEVICE_PURPOSE = "wee5 sign-in device"


def _email_key(email: str) -> str:
    """The email as a budget names it: hashed, so Redis keys hold no addresses."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class SignInThrottle:
    def __init__(self, limits: RateLimits, tokens: AccessTokens) -> None:
        self.limits = limits
        self.tokens = tokens

    @classmethod
    def of(cls, request: Request[Any, Any, Any]) -> SignInThrottle:
        return cls(rate_limits_of(request), request.app.state.tokens)

    def _login_budget(self, email: str) -> Budget:
        return Budget(RouteClass.LOGIN_FAILURES, f"email:{_email_key(email)}")

    async def before_login(self, request: Request[Any, Any, Any], email: str) -> None:
        """429 when this email's failures are over its budget and the caller's browser has
        not signed in to it before."""
        verdict = await self.limits.peek(self._login_budget(email))
        if verdict is None or verdict.allowed or self.knows_device(request, email):
            return
        raise RateLimited(
            f"too many failed sign-ins to this email; try again in {verdict.reset_seconds} s, "
            "or from a browser that has signed in to it before",
            headers=verdict.headers(),
        )

    async def login_failed(self, email: str) -> None:
        await self.limits.spend(self._login_budget(email), 1)

    async def register(self, email: str) -> None:
        await self.limits.enforce(Budget(RouteClass.REGISTER_EMAIL, f"email:{_email_key(email)}"))

    async def refresh(self, account_id: uuid.UUID) -> None:
        await self.limits.enforce(Budget(RouteClass.REFRESH_ACCOUNT, f"account:{account_id}"))

    def device_cookie(self, email: str, settings: GatewaySettings) -> Cookie:
        """Marks this browser as one that signed in to `email` (after a correct password)."""
        nonce = secrets.token_urlsafe(12)
        return Cookie(
            key=DEVICE_COOKIE,
            value=f"{nonce}.{self._device_mac(email, nonce)}",
            path="/",
            max_age=DEVICE_COOKIE_MAX_AGE,
            secure=settings.cookie_secure,
            httponly=True,
            samesite="strict",
        )

    def knows_device(self, request: Request[Any, Any, Any], email: str) -> bool:
        nonce, _, mac = (request.cookies.get(DEVICE_COOKIE) or "").partition(".")
        return bool(nonce and mac) and hmac.compare_digest(mac, self._device_mac(email, nonce))

    def _device_mac(self, email: str, nonce: str) -> str:
        return self.tokens.mac(_DEVICE_PURPOSE, f"{_email_key(email)}:{nonce}")
