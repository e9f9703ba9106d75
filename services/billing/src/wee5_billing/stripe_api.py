"""Stripe through its official SDK: the calls billing makes, and what Stripe's objects mean here.

Every call is the SDK's async variant over its httpx client, so the event loop never blocks;
the SDK retries network errors, 409 and 5xx with backoff (`WEE5_STRIPE_MAX_NETWORK_RETRIES`),
and every write carries an idempotency key, so a retry never creates a second object.
Webhooks are verified with `stripe.Webhook.construct_event` (300 s tolerance).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe

from wee5_billing.config import BillingSettings
from wee5_billing.errors import (
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)

T = TypeVar("T")

WEBHOOK_TOLERANCE_SECONDS = 300
# Metadata keys of checkout sessions and subscriptions: which community a payment is for.
COMMUNITY_KEY = "community_id"
# Set when the subscription is a company's: it covers every community of that company.
COMPANY_KEY = "company_id"
OWNER_ACCOUNT_KEY = "owner_account_id"
OWNER_USER_KEY = "owner_user_id"
# …and which plan and interval the checkout was for.
PLAN_KEY = "plan"
INTERVAL_KEY = "interval"


def from_unix(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _id_of(value: object) -> str:
    """Stripe fields that point at another object hold its id, or the object when expanded."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class SubscriptionData:
    """What billing reads from a Stripe `subscription` object."""

    id: str
    customer_id: str
    status: str
    price_id: str
    metadata: dict[str, str]
    created: datetime
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None

    @property
    def community_id(self) -> str:
        return self.metadata.get(COMMUNITY_KEY, "")

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> SubscriptionData:
        items = _mapping(obj.get("items")).get("data")
        first = _mapping(items[0]) if isinstance(items, list) and items else {}
        # API versions since 2025-03-31 keep the period on each item; older ones on the
        # subscription itself.
        period_end = from_unix(first.get("current_period_end")) or from_unix(
            obj.get("current_period_end")
        )
        created = from_unix(obj.get("created"))
        if not obj.get("id") or created is None:
            raise WebhookPayloadInvalid("the subscription has no id or created time")
        return cls(
            id=str(obj["id"]),
            customer_id=_id_of(obj.get("customer")),
            status=str(obj.get("status") or ""),
            price_id=_id_of(first.get("price")),
            metadata={str(k): str(v) for k, v in _mapping(obj.get("metadata")).items()},
            created=created,
            current_period_end=period_end,
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            trial_end=from_unix(obj.get("trial_end")),
        )


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str:
    """The subscription an invoice bills: `parent.subscription_details.subscription` in newer
    API versions, `subscription` in older ones."""
    details = _mapping(_mapping(invoice.get("parent")).get("subscription_details"))
    return _id_of(details.get("subscription")) or _id_of(invoice.get("subscription"))


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime
    object: dict[str, Any]


def verify_event(payload: bytes, signature_header: str, secret: str | None) -> Event:
    """The event in `payload` if `signature_header` proves Stripe sent it (and recently)."""
    if not secret:
        raise WebhookNotConfigured()
    try:
        event = stripe.Webhook.construct_event(
            payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as error:
        raise WebhookSignatureInvalid(f"Stripe signature rejected: {error.user_message}") from None
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadInvalid("the webhook body is not a JSON Stripe event") from None
    body = event.to_dict()
    created = from_unix(body.get("created"))
    data = body.get("data")
    if (
        not isinstance(body.get("id"), str)
        or not isinstance(body.get("type"), str)
        or created is None
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        raise WebhookPayloadInvalid("a Stripe event needs id, type, created and data.object")
    return Event(body["id"], body["type"], created, data["object"])


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class StripeApi:
    """The Stripe calls billing makes. Without a secret key every call raises
    `StripeNotConfigured`."""

    def __init__(self, settings: BillingSettings) -> None:
        key = settings.stripe_secret_key.get_secret_value() if settings.stripe_secret_key else ""
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPXClient | None = None
        if key:
            self._http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
            self._client = stripe.StripeClient(
                key,
                base_addresses={"api": settings.stripe_api_base},
                http_client=self._http,
                max_network_retries=settings.stripe_max_network_retries,
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            raise StripeNotConfigured()
        return self._client

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(self, *, owner_account_id: str, email: str) -> str:
        params: dict[str, Any] = {"metadata": {OWNER_ACCOUNT_KEY: owner_account_id}}
        if email:
            params["email"] = email
        customer = await _call(
            self.client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"wee5-customer-{owner_account_id}"},
            )
        )
        return str(customer.id)

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": metadata[COMMUNITY_KEY],
            "metadata": metadata,
            # Copied onto the subscription, so its own events name the community too.
            "subscription_data": {"metadata": metadata},
        }
        session = await _call(
            self.client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )
        if not session.url:
            raise StripeRejected("Stripe returned a checkout session without a URL")
        return CheckoutSession(str(session.id), str(session.url))

    async def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        params: dict[str, Any] = {"customer": customer_id}
        if return_url:
            params["return_url"] = return_url
        session = await _call(
            self.client.v1.billing_portal.sessions.create_async(params)  # type: ignore[arg-type]
        )
        return str(session.url)

    async def subscription(self, subscription_id: str) -> SubscriptionData:
        subscription = await _call(self.client.v1.subscriptions.retrieve_async(subscription_id))
        return SubscriptionData.parse(subscription.to_dict())

    async def subscriptions(self) -> AsyncIterator[SubscriptionData]:
        """Every subscription of the account, canceled ones included, page by page."""
        page = await _call(self.client.v1.subscriptions.list_async({"status": "all", "limit": 100}))
        try:
            async for subscription in page.auto_paging_iter():
                yield SubscriptionData.parse(subscription.to_dict())
        except stripe.StripeError as error:
            raise _translate(error) from None


async def _call(call: Awaitable[T]) -> T:
    try:
        return await call
    except stripe.StripeError as error:
        raise _translate(error) from None


def _translate(error: stripe.StripeError) -> Exception:
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.InvalidRequestError | stripe.CardError):
        return StripeRejected(f"Stripe refused the request: {message}")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return StripeUnavailable(f"Stripe rejected the API key: {message}")
    return StripeUnavailable(f"Stripe did not answer: {message}")
