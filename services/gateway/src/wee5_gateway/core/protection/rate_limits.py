"""Rate limits per route class, counted in Redis over a moving window (the `limits` library).

Design: one Litestar middleware (`RateLimitMiddleware`) runs after routing and before the
handler. It classifies the request by method and path (`route_class`), finds whose budget it
spends (`Budget`: the API key, else the account, else the client IP) and counts one hit. Over
the limit it answers 429 problem+json with `Retry-After`; under it, the response carries the
`RateLimit-*` headers. Leaderboard and rank card image reads without credentials (public
boards) spend a budget of their own per IP, smaller than the read budget.

The activity intake is counted per activity, not per request: the batch route
(`…/activities/batch`, up to 1,000 activities) spends the same `activities` budget of the API
key as the single intake, one unit per activity. The middleware counts the request as one
when it arrives (so a flood of bad or unauthenticated batches is throttled before any body is
read); once the body is valid the handler calls `spend_more(request, n - 1)`, which takes the
rest in one atomic hit or answers 429 having recorded nothing. Batching saves round trips; it
never buys a bot more activities than the key's budget allows.

The caller is identified by the same `resolve_principal` the handlers use, and the result is
kept on the request for the `principal` dependency, so a JWT is decoded (or an API key looked
up) once per request. A credential that does not resolve spends the client IP's budget: an
attacker cannot mint fresh budgets with made-up tokens. Login, register and refresh always
count per IP, before any credential is looked at, and so do the account routes that check a
password (changing it or the email, deleting the account).

Whop webhooks are not counted by the middleware: a delivery whose signature is valid is never
throttled, and the webhook route calls `throttle_rejected_webhook(request)` only after the
signature check failed.

The client IP is the ASGI client address; uvicorn rewrites it from X-Forwarded-For only for
the proxies in WEE5_TRUSTED_PROXIES.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, cast

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Principal, remember_principal
from wee5_gateway.core.problems import RateLimited, Unauthenticated
from wee5_kit.aio import background, cancel_and_wait
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.rate_limits")

API_PREFIX = "/api/v1/"
AUTH_PATHS = frozenset({"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"})
# The account routes that check a password spend the sign-in budget too, so a stolen access
# token cannot be used to guess the account's password faster than sign-in allows.
PASSWORD_CHECKED_ROUTES = frozenset(
    {("PUT", "/api/v1/me/password"), ("PUT", "/api/v1/me/email"), ("DELETE", "/api/v1/me")}
)
_ACTIVITIES = re.compile(r"/api/v1/communities/[^/]+/activities(?:/batch)?/?")
# What anonymous readers may read of a public board: the board and the rank card images.
_PUBLIC_READS = re.compile(r"/api/v1/communities/[^/]+/(?:leaderboard/?|members/[^/]+/card\.png)")
_READ_METHODS = frozenset({"GET", "HEAD"})

# A rate-limit check must never make the API slow: Redis gets this long per call, then the
# request goes through unthrottled; after a failure Redis is left alone for a while.
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_AFTER_FAILURE_SECONDS = 5.0
# Hits of a busy budget counted in Redis at once (see `RateLimits.hit`): about a quarter of
# `LEASE_SECONDS` of the spender's own pace, at most an eighth of what its budget has left and
# at most `MAX_LEASE`.
MAX_LEASE = 1024
LEASE_FRACTION = 8
LEASE_SECONDS = 1.0
LEASE_AHEAD = 0.25
MAX_LEASES = 10_000
# A lease down to this fraction of its size is renewed in the background (`RateLimits._renew`).
RENEW_FRACTION = 2
# Where the middleware leaves what it counted (`Counted`) for `spend_more`.
_COUNTED_STATE_KEY = "wee5.rate_limit"


class RouteClass(StrEnum):
    AUTH = "auth"
    WEBHOOK_BAD_SIGNATURE = "webhook_bad_signature"
    READ = "read"
    PUBLIC_READ = "public_read"  # a board or card image read without credentials (public boards)
    WRITE = "write"
    ACTIVITIES = "activities"
    # Counted by the sign-in routes themselves, per email or account (api/accounts/throttle.py).
    LOGIN_FAILURES = "login_failures"
    REGISTER_EMAIL = "register_email"
    REFRESH_ACCOUNT = "refresh_account"


def route_class(method: str, path: str) -> RouteClass | None:
    """The budget family a request spends from; None: not rate limited (probes, the OpenAPI
    document, webhooks, CORS preflights)."""
    if not path.startswith(API_PREFIX) or method == "OPTIONS":
        return None
    if path.rstrip("/") in AUTH_PATHS or (method, path.rstrip("/")) in PASSWORD_CHECKED_ROUTES:
        return RouteClass.AUTH
    if method in _READ_METHODS:
        return RouteClass.PUBLIC_READ if _PUBLIC_READS.fullmatch(path) else RouteClass.READ
    if _ACTIVITIES.fullmatch(path):
        return RouteClass.ACTIVITIES
    return RouteClass.WRITE


@dataclass(frozen=True)
class Budget:
    """One counter: a route class and who spends it (`key:<id>`, `account:<id>`, `ip:<addr>`)."""

    route_class: RouteClass
    spender: str


def budget_of(kind: RouteClass, principal: Principal | None, client_ip: str) -> Budget:
    if kind is RouteClass.ACTIVITIES and (principal is None or principal.api_key_id is None):
        # The intake is for API keys; anyone else (who will get 401/403) spends the write budget.
        kind = RouteClass.WRITE
    if kind is RouteClass.PUBLIC_READ and principal is not None and not principal.is_anonymous:
        # Signed-in readers of a board spend their own read budget; anonymous ones their IP's.
        kind = RouteClass.READ
    if kind in (RouteClass.AUTH, RouteClass.WEBHOOK_BAD_SIGNATURE) or principal is None:
        return Budget(kind, f"ip:{client_ip}")
    if principal.api_key_id is not None:
        return Budget(kind, f"key:{principal.api_key_id}")
    if principal.account_id is not None:
        return Budget(kind, f"account:{principal.account_id}")
    if principal.whop_user_id is not None:
        return Budget(kind, f"whop:{principal.whop_user_id}")
    return Budget(kind, f"ip:{client_ip}")


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the oldest counted hit leaves the window (a slot frees up).
    reset_seconds: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


@dataclass
class Counted:
    """What a request was counted against, and the verdict its answer's headers report (the
    latest: `spend_more` replaces it)."""

    budget: Budget
    verdict: Verdict


@dataclass
class _Lease:
    """Hits of one budget reserved in Redis and not yet spent by this process."""

    left: int
    verdict: Verdict  # Redis's answer when they were reserved
    until: float  # time.monotonic() after which they are no longer spent
    size: int = 1  # how many were reserved at once
    renewing: bool = False  # the next ones are being reserved in the background
    started: float = 0.0  # time.monotonic() when they were reserved
    spent: int = 1  # hits spent since then (the one that reserved them first)
    queued: int = 0  # requests that waited for this reservation

    def next_size(self, now: float) -> int:
        """Hits to reserve next: the spender's pace since this lease began over a quarter of
        `LEASE_SECONDS` (or, if more, the requests that waited for this one), at most an
        eighth of what is left and `MAX_LEASE`. A spender of a hit now and then reserves one
        at a time (what it reserves and does not spend in time stays counted); one near its
        limit too, where counting must be exact."""
        pace = self.spent / max(now - self.started, 0.001)
        ahead = max(math.ceil(pace * LEASE_SECONDS * LEASE_AHEAD), self.queued)
        return max(1, min(MAX_LEASE, self.verdict.remaining // LEASE_FRACTION, ahead))


@dataclass
class _Reserving:
    """A budget's reservation on its way from Redis: the budget's requests that come
    meanwhile wait for it, rather than each reserving hits of its own."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0
    # Redis's answer when the budget had no room: the waiting requests get it too.
    refused: Verdict | None = None


class RateLimits:
    """The limits of every route class and their counters in Redis."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.items: dict[RouteClass, RateLimitItem] = {
            RouteClass.AUTH: parse(settings.rate_limit_auth),
            RouteClass.WEBHOOK_BAD_SIGNATURE: parse(settings.rate_limit_webhook_bad_signature),
            RouteClass.READ: parse(settings.rate_limit_read),
            RouteClass.PUBLIC_READ: parse(settings.rate_limit_public_read),
            RouteClass.WRITE: parse(settings.rate_limit_write),
            RouteClass.ACTIVITIES: parse(settings.rate_limit_activities),
            RouteClass.LOGIN_FAILURES: parse(settings.rate_limit_login_failures_per_email),
            RouteClass.REGISTER_EMAIL: parse(settings.rate_limit_register_per_email),
            RouteClass.REFRESH_ACCOUNT: parse(settings.rate_limit_refresh_per_account),
        }
        # Our own pool (redis-py parses the URL, db index included): short timeouts and no
        # retries, so a Redis outage costs a request at most one short wait.
        self._pool: ConnectionPool = ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=f"{settings.redis_prefix}:ratelimit",
            wrap_exceptions=True,
            connection_pool=cast(Any, self._pool),  # limits types its options as scalars
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._paused_until = 0.0
        self._leases: dict[Budget, _Lease] = {}
        self._reserving: dict[Budget, _Reserving] = {}
        self._renewals: set[asyncio.Task[None]] = set()

    async def hit(self, budget: Budget) -> Verdict | None:
        """Counts one request against `budget`. None: not counted because Redis failed.

        A busy spender is counted in Redis many hits at a time: this process reserves what
        the spender's pace spends in a quarter of `LEASE_SECONDS` (`_Lease.next_size`: at most
        an eighth of what the budget has left, so one hit at a time near the limit, where it
        must be exact) and spends them here for up to `LEASE_SECONDS`. Hits reserved and not
        spent in that time stay counted, so a client may be limited a little early, never
        late; one that spends a hit now and then reserves one at a time, so it gets all of
        its budget."""
        while True:
            now = time.monotonic()
            lease = self._leases.get(budget)
            if lease is not None and lease.left > 0 and lease.until > now:
                return self._spend_one(budget, lease)
            if now < self._paused_until:
                return None
            reserving = self._reserving.get(budget)
            if reserving is None:
                break
            reserving.waiting += 1
            await reserving.done.wait()
            if reserving.refused is not None:
                return reserving.refused
        reserving = self._reserving[budget] = _Reserving()
        try:
            return await self._reserve(budget, lease, now, reserving)
        finally:
            del self._reserving[budget]
            reserving.done.set()

    def _spend_one(self, budget: Budget, lease: _Lease) -> Verdict:
        lease.left -= 1
        lease.spent += 1
        if lease.size > 1 and lease.left <= lease.size // RENEW_FRACTION and not lease.renewing:
            lease.renewing = True
            renewal = background(self._renew(budget, lease), name="rate-lease")
            self._renewals.add(renewal)
            renewal.add_done_callback(self._renewals.discard)
        return replace(lease.verdict, remaining=lease.verdict.remaining + lease.left)

    async def _reserve(
        self, budget: Budget, lease: _Lease | None, now: float, reserving: _Reserving
    ) -> Verdict | None:
        """Reserves the budget's next hits in Redis and spends the first."""
        size = lease.next_size(now) if lease is not None and lease.verdict.allowed else 1
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                verdict = await self._count(budget, size)
                if not verdict.allowed and size > 1:
                    size = 1  # the budget may still have room for this one request
                    verdict = await self._count(budget, size)
        except (StorageError, TimeoutError, OSError) as error:
            self._fail_open(error)
            return None
        if not verdict.allowed:
            reserving.refused = verdict
        lease = _Lease(
            size - 1, verdict, now + LEASE_SECONDS, size, started=now, queued=reserving.waiting
        )
        self._keep(budget, lease, now)
        return replace(verdict, remaining=verdict.remaining + size - 1)

    async def _renew(self, budget: Budget, lease: _Lease) -> None:
        """Reserves the next hits of a busy budget while the last of its lease are spent, so
        no request of a busy spender waits for Redis (a request that did waited two of the
        event loop's turns). The hits still unspent carry over into the new lease: they were
        counted when reserved. Refused or failed: the lease runs out, and the next request
        counts in Redis itself, exactly."""
        size = lease.next_size(time.monotonic())
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                verdict = await self._count(budget, size)
        except (StorageError, TimeoutError, OSError) as error:
            self._fail_open(error)
            return
        if not verdict.allowed or self._leases.get(budget) is not lease:
            return  # nothing was reserved; or the lease was dropped meanwhile
        now = time.monotonic()
        renewed = _Lease(
            lease.left + size, verdict, now + LEASE_SECONDS, size, started=now, spent=0
        )
        self._keep(budget, renewed, now)

    async def spend(self, budget: Budget, units: int) -> Verdict | None:
        """Counts `units` more (all or none) against `budget` in Redis at once, past any
        lease: for a batch, whose size is known. None: not counted because Redis failed."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                return await self._count(budget, units)
        except (StorageError, TimeoutError, OSError) as error:
            self._fail_open(error)
            return None

    async def peek(self, budget: Budget) -> Verdict | None:
        """Whether `budget` has room for one more, counting nothing. None: Redis failed."""
        if time.monotonic() < self._paused_until:
            return None
        item = self.items[budget.route_class]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                stats = await self._limiter.get_window_stats(
                    item, budget.route_class.value, budget.spender
                )
        except (StorageError, TimeoutError, OSError) as error:
            self._fail_open(error)
            return None
        return _verdict(item, stats.remaining > 0, stats.remaining, stats.reset_time)

    def _fail_open(self, error: Exception) -> None:
        """When Redis is down the API stays available, unthrottled, rather than failing every
        request; Redis is asked again (and the warning repeated) after a few seconds."""
        self._paused_until = time.monotonic() + REDIS_RETRY_AFTER_FAILURE_SECONDS
        log.warning(
            "rate limits not enforced: Redis failed; requests pass unthrottled",
            error=type(error).__name__,
            retry_in_seconds=REDIS_RETRY_AFTER_FAILURE_SECONDS,
        )

    async def _count(self, budget: Budget, size: int) -> Verdict:
        item = self.items[budget.route_class]
        identity = (budget.route_class.value, budget.spender)
        allowed = await self._limiter.hit(item, *identity, cost=size)
        stats = await self._limiter.get_window_stats(item, *identity)
        return _verdict(item, allowed, stats.remaining, stats.reset_time)

    def _keep(self, budget: Budget, lease: _Lease, now: float) -> None:
        if len(self._leases) >= MAX_LEASES:
            self._leases = {b: kept for b, kept in self._leases.items() if kept.until > now}
            if len(self._leases) >= MAX_LEASES:
                self._leases.clear()
        self._leases[budget] = lease

    async def enforce(self, budget: Budget) -> Verdict | None:
        """Counts one request; raises 429 `RateLimited` when it is over the limit."""
        verdict = await self.hit(budget)
        if verdict is not None and not verdict.allowed:
            raise RateLimited(
                f"too many requests ({budget.route_class.value}); "
                f"try again in {verdict.reset_seconds} s",
                headers=verdict.headers(),
            )
        return verdict

    def limit_of(self, route_class: RouteClass) -> RateLimitItem:
        return self.items[route_class]

    async def close(self) -> None:
        await cancel_and_wait(self._renewals)
        await self._pool.aclose()


def _verdict(item: RateLimitItem, allowed: bool, remaining: int, reset_time: float) -> Verdict:
    window = item.get_expiry()
    reset = max(0, math.ceil(reset_time - time.time()))
    return Verdict(
        allowed=allowed,
        limit=item.amount,
        remaining=max(0, remaining),
        reset_seconds=max(1, reset) if not allowed else min(reset, window),
        window_seconds=window,
    )


PrincipalResolver = Callable[[Request[Any, Any, Any]], Awaitable[Principal]]


class RateLimitMiddleware(ASGIMiddleware):
    """Counts every /api/v1 request against its route class's budget (see the module doc)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limits: RateLimits, resolve_principal: PrincipalResolver) -> None:
        self.limits = limits
        self.resolve_principal = resolve_principal

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        kind = route_class(scope["method"], scope["path"])  # type: ignore[typeddict-item]
        if kind is None:
            await next_app(scope, receive, send)
            return
        principal = None
        if kind is not RouteClass.AUTH:
            principal = await self._principal(Request(scope, receive))
        budget = budget_of(kind, principal, client_ip(scope))
        verdict = await self.limits.enforce(budget)
        if verdict is None:
            await next_app(scope, receive, send)
            return
        counted = Counted(budget, verdict)
        scope.setdefault("state", {})[_COUNTED_STATE_KEY] = counted

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message).update(counted.verdict.headers())
            await send(message)

        await next_app(scope, receive, send_with_headers)

    async def _principal(self, request: Request[Any, Any, Any]) -> Principal | None:
        try:
            principal = await self.resolve_principal(request)
        except Unauthenticated:
            # Counted per IP; the route answers the 401 itself if it needs a caller.
            return None
        remember_principal(request, principal)
        return principal


def rate_limits_of(request: Request[Any, Any, Any]) -> RateLimits:
    return cast(RateLimits, request.app.state.rate_limits)


async def spend_more(request: Request[Any, Any, Any], units: int, what: str) -> None:
    """Spends `units` more of the budget the middleware counted this request against (it
    counted one), all or none: a batch of n activities calls it with n - 1 once its body is
    valid. Over the budget: 429, and nothing of it is spent. Not counted (a route without a
    limit, or Redis failing open): nothing to do."""
    counted = request.scope.get("state", {}).get(_COUNTED_STATE_KEY)
    if not isinstance(counted, Counted) or units <= 0:
        return
    limits = rate_limits_of(request)
    item = limits.limit_of(counted.budget.route_class)
    if units + 1 > item.amount:
        raise RateLimited(
            f"{units + 1} {what} are more than this budget allows in a whole window "
            f"({item.amount} per {item.get_expiry()} s); send fewer at a time"
        )
    verdict = await limits.spend(counted.budget, units)
    if verdict is None:
        return
    counted.verdict = verdict
    if not verdict.allowed:
        raise RateLimited(
            f"too many {what} ({counted.budget.route_class.value}): {units + 1} sent, "
            f"{verdict.remaining + 1} left in the window; try again in {verdict.reset_seconds} s",
            headers=verdict.headers(),
        )


async def throttle_rejected_webhook(request: Request[Any, Any, Any]) -> None:
    """For a webhook whose signature failed: counts it against the client IP and raises 429
    once that IP is over `rate_limit_webhook_bad_signature`. Call it only after the check
    failed, so validly signed deliveries are never throttled."""
    await rate_limits_of(request).enforce(
        Budget(RouteClass.WEBHOOK_BAD_SIGNATURE, f"ip:{client_ip(request.scope)}")
    )
