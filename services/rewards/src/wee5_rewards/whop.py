"""Whop's REST API (v1) for the calls rewards make: read a membership, add free days to it,
create a promo code and find one by its code; post a chat message, read a channel's latest
messages, and send a push notification (announcements).

Every call has a deadline. Failures are sorted by what the caller can conclude from them:
`WhopNotApplied` (nothing happened: the request never left, or Whop refused it before acting),
`WhopOutcomeUnknown` (a write was sent and no answer says whether Whop applied it: timeout,
dropped connection, 5xx) and `WhopRejected` (Whop answered that it will not do this; retrying
the same request cannot help). The retry policy lives with the caller (delivery.py), which
records every attempt in the database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from wee5_kit.provider_ids import path_segment
from wee5_rewards.metrics import WHOP_CALLS

# Whop's statuses of a membership that still give access.
ACTIVE_STATUSES = frozenset({"trialing", "active", "past_due", "canceling"})


class WhopError(Exception):
    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class WhopNotApplied(WhopError):
    """The call did not change anything at Whop (not sent, 429, or a read that failed)."""

    def __init__(
        self, message: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, http_status)
        self.retry_after = retry_after


class WhopOutcomeUnknown(WhopError):
    """A write went out and no answer came back that says whether it was applied."""


class WhopRejected(WhopError):
    """Whop answered 4xx: this request will not succeed as it is."""


class WhopUnauthorized(WhopRejected):
    """401/403: the API key is wrong or lacks a permission; an operator must fix it."""


@dataclass(frozen=True)
class WhopMembership:
    id: str
    status: str
    company_id: str | None
    renewal_period_end: datetime | None


@dataclass(frozen=True)
class PromoCodeSpec:
    code: str
    company_id: str
    promo_type: str  # "percentage" | "flat_amount"
    amount_off: float
    base_currency: str
    promo_duration_months: int
    expires_at: datetime | None = None
    plan_ids: tuple[str, ...] = ()
    new_users_only: bool = False
    one_per_customer: bool = True
    stock: int = 1


@dataclass(frozen=True)
class WhopPromoCode:
    id: str
    code: str
    status: str


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _membership(body: dict[str, Any]) -> WhopMembership:
    company = body.get("company") or {}
    return WhopMembership(
        id=str(body["id"]),
        status=str(body.get("status") or ""),
        company_id=company.get("id") if isinstance(company, dict) else None,
        renewal_period_end=_parse_time(body.get("renewal_period_end")),
    )


def _promo(body: dict[str, Any]) -> WhopPromoCode:
    return WhopPromoCode(
        id=str(body["id"]), code=str(body.get("code") or ""), status=str(body.get("status") or "")
    )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
        if body.get("message"):
            return str(body["message"])[:200]
    return response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


class WhopClient:
    """One httpx client per process, `Authorization: Bearer <key>` on every call."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def get_membership(self, membership_id: str) -> WhopMembership:
        body = await self._call(
            "get_membership", "GET", f"memberships/{path_segment(membership_id)}"
        )
        return _membership(body)

    async def add_free_days(
        self, membership_id: str, days: int, *, idempotency_key: str
    ) -> WhopMembership:
        body = await self._call(
            "add_free_days",
            "POST",
            f"memberships/{path_segment(membership_id)}/add_free_days",
            json={"free_days": days},
            idempotency_key=idempotency_key,
        )
        return _membership(body)

    async def create_promo_code(
        self, spec: PromoCodeSpec, *, idempotency_key: str
    ) -> WhopPromoCode:
        payload: dict[str, Any] = {
            "amount_off": spec.amount_off,
            "base_currency": spec.base_currency,
            "code": spec.code,
            "company_id": spec.company_id,
            "new_users_only": spec.new_users_only,
            "promo_duration_months": spec.promo_duration_months,
            "promo_type": spec.promo_type,
            "one_per_customer": spec.one_per_customer,
            "stock": spec.stock,
        }
        if spec.plan_ids:
            payload["plan_ids"] = list(spec.plan_ids)
        if spec.expires_at is not None:
            payload["expires_at"] = spec.expires_at.isoformat()
        body = await self._call(
            "create_promo_code",
            "POST",
            "promo_codes",
            json=payload,
            idempotency_key=idempotency_key,
        )
        return _promo(body)

    async def find_promo_code(
        self, company_id: str, code: str, *, created_after: datetime | None = None
    ) -> WhopPromoCode | None:
        """The company's promo code with this code, looking through the pages of codes created
        after `created_after` (the list has no filter by code)."""
        params: dict[str, str] = {"company_id": company_id, "first": "100"}
        if created_after is not None:
            params["created_after"] = created_after.isoformat()
        while True:
            body = await self._call("find_promo_code", "GET", "promo_codes", params=params)
            for item in body.get("data") or []:
                if str(item.get("code", "")).upper() == code.upper():
                    return _promo(item)
            cursor = (body.get("page_info") or {}).get("end_cursor")
            if not cursor or not (body.get("page_info") or {}).get("has_next_page", True):
                return None
            params["after"] = str(cursor)

    async def post_message(self, channel_id: str, content: str) -> str:
        """Posts `content` (markdown) in a chat channel; the message id."""
        body = await self._call(
            "post_message",
            "POST",
            "messages",
            json={"channel_id": channel_id, "content": content},
        )
        return str(body.get("id") or "")

    async def recent_messages(self, channel_id: str, first: int = 50) -> list[dict[str, Any]]:
        """The channel's latest messages (newest first, one page)."""
        body = await self._call(
            "list_messages",
            "GET",
            "messages",
            params={"channel_id": channel_id, "first": str(first)},
        )
        data = body.get("data") or []
        return [item for item in data if isinstance(item, dict)]

    async def send_notification(
        self, experience_id: str, title: str, content: str, user_ids: list[str]
    ) -> None:
        """A push notification to `user_ids` among the experience's members."""
        await self._call(
            "send_notification",
            "POST",
            "notifications",
            json={
                "experience_id": experience_id,
                "title": title,
                "content": content,
                "user_ids": user_ids,
            },
        )

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        **options: Any,
    ) -> dict[str, Any]:
        """`_request`, timed in `wee5_whop_call_seconds` by operation and outcome."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._request(method, path, **options)
        except WhopError as error:
            outcome = _outcome(error)
            raise
        finally:
            WHOP_CALLS.labels(operation, outcome).observe(time.perf_counter() - started)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        writes = method != "GET"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            # One deadline over the whole call, whatever phase it is in.
            async with asyncio.timeout(self.timeout):
                response = await self.http.request(
                    method, path, json=json, params=params, headers=headers
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise WhopNotApplied(f"Whop unreachable: {type(error).__name__}") from None
        except (TimeoutError, httpx.TimeoutException, httpx.TransportError) as error:
            message = f"no answer from Whop: {type(error).__name__}"
            if writes:
                raise WhopOutcomeUnknown(message) from None
            raise WhopNotApplied(message) from None
        status = response.status_code
        if status < 300:
            body = response.json()
            return body if isinstance(body, dict) else {"data": body}
        message = f"Whop answered {status}: {_detail(response)}"
        if status == 429:
            raise WhopNotApplied(message, status, _retry_after(response))
        if status >= 500:
            if writes:
                raise WhopOutcomeUnknown(message, status)
            raise WhopNotApplied(message, status)
        if status in (401, 403):
            raise WhopUnauthorized(message, status)
        raise WhopRejected(message, status)


def _outcome(error: WhopError) -> str:
    """The metric's word for why a call to Whop failed."""
    if isinstance(error, WhopUnauthorized):
        return "unauthorized"
    if isinstance(error, WhopRejected):
        return "rejected"
    if error.http_status == 429:
        return "rate_limited"
    if error.http_status is not None:
        return "server_error"
    return "no_answer" if isinstance(error, WhopOutcomeUnknown) else "unreachable"
