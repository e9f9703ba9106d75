"""Stripe as billing sees it: a local HTTP server speaking Stripe's API, and signed webhooks.

The server takes what the official SDK sends (form-encoded bodies with bracketed keys such as
`metadata[community_id]`, `Idempotency-Key` headers, Bearer auth) and answers objects shaped
like Stripe's OpenAPI fixtures (`customer`, `checkout.session`, `billing_portal.session`,
`subscription` with `items.data[].current_period_end`, `list`). A POST repeated with the same
`Idempotency-Key` gets the first answer back, as Stripe does.

Webhooks are signed here by hand with Stripe's documented scheme (`Stripe-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}" keyed with the whole whsec_ secret>`), not with
the SDK, so the tests prove billing agrees with Stripe's format rather than with itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
API_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_" + "test" * 8
DAY = 86_400
PERIODS = {"month": 30 * DAY, "year": 365 * DAY}


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{uuid.uuid4().hex[:24]}"


def sign(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe would send with `body`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    previous_attributes: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> bytes:
    """The body of a webhook delivery: a Stripe `event` wrapping `obj`."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    body = {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(body).encode()


def subscription_object(
    *,
    customer: str,
    price: str,
    metadata: dict[str, str],
    status: str = "active",
    created: int | None = None,
    interval: str = "month",
    period_start: int | None = None,
    legacy_period: bool = False,
    subscription_id: str | None = None,
) -> dict[str, Any]:
    """A `subscription` as Stripe renders it; `legacy_period` puts the period on the
    subscription itself, as API versions before 2025-03-31 did."""
    created = int(time.time()) if created is None else created
    start = created if period_start is None else period_start
    end = start + PERIODS[interval]
    sub_id = subscription_id or new_id("sub")
    item: dict[str, Any] = {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": created,
        "metadata": {},
        "price": {
            "id": price,
            "object": "price",
            "active": True,
            "currency": "usd",
            "product": "prod_test_wee5",
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": 1900,
        },
        "quantity": 1,
        "subscription": sub_id,
    }
    subscription: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": start,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer,
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": new_id("in"),
        "livemode": False,
        "metadata": dict(metadata),
        "start_date": created,
        "status": status,
        "trial_end": None,
        "trial_start": None,
    }
    if legacy_period:
        subscription["current_period_start"] = start
        subscription["current_period_end"] = end
    else:
        item["current_period_start"] = start
        item["current_period_end"] = end
    return subscription


def invoice_object(
    subscription: dict[str, Any],
    *,
    billing_reason: str = "subscription_cycle",
    paid: bool = True,
    invoice_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """An `invoice` of the subscription (new API versions: its subscription under `parent`)."""
    created = int(time.time()) if created is None else created
    return {
        "id": invoice_id or new_id("in"),
        "object": "invoice",
        "customer": subscription["customer"],
        "status": "paid" if paid else "open",
        "amount_due": 1900,
        "amount_paid": 1900 if paid else 0,
        "amount_remaining": 0 if paid else 1900,
        "attempt_count": 1,
        "billing_reason": billing_reason,
        "currency": "usd",
        "created": created,
        "period_start": created - PERIODS["month"],
        "period_end": created,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": subscription["metadata"],
                "subscription": subscription["id"],
            },
        },
        "livemode": False,
    }


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=v` form keys (as the SDK encodes) → nested dicts; list indexes stay keys."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class FakeStripe:
    """Stripe's API on 127.0.0.1: state the tests can read and change, and every request."""

    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def complete_checkout(
        self, session_id: str, *, status: str = "active", created: int | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """What happens in Stripe when the owner pays: the session completes and creates a
        subscription carrying `subscription_data.metadata`. Returns both objects."""
        with self.lock:
            session = self.sessions[session_id]
            price = session["line_items"]["0"]["price"]
            metadata = session["subscription_data"]["metadata"]
            subscription = subscription_object(
                customer=session["customer"],
                price=price,
                metadata=metadata,
                status=status,
                created=created,
            )
            self.subscriptions[subscription["id"]] = subscription
            session.update(
                status="complete", payment_status="paid", subscription=subscription["id"]
            )
            return dict(session), subscription

    # --- the API ------------------------------------------------------------------------

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, _error("Invalid API Key provided", "authentication_error")
        key = request.headers.get("idempotency-key")
        with self.lock:
            self.requests.append(request)
            if request.method == "POST" and key and key in self.idempotent:
                return self.idempotent[key]
            status, body = self._route(request)
            if request.method == "POST" and key:
                self.idempotent[key] = (status, body)
            return status, body

    def _route(self, request: Request) -> tuple[int, dict[str, Any]]:
        p, now = request.params, int(time.time())
        if request.method == "POST" and request.path == "/v1/customers":
            customer = {
                "id": new_id("cus"),
                "object": "customer",
                "created": now,
                "email": p.get("email"),
                "metadata": p.get("metadata", {}),
                "livemode": False,
            }
            self.customers[customer["id"]] = customer
            return 200, customer
        if request.method == "POST" and request.path == "/v1/checkout/sessions":
            if p.get("customer") not in self.customers:
                return 400, _error(
                    f"No such customer: '{p.get('customer')}'", code="resource_missing"
                )
            session_id = new_id("cs")
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": p.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "customer": p.get("customer"),
                "client_reference_id": p.get("client_reference_id"),
                "metadata": p.get("metadata", {}),
                "subscription": None,
                "success_url": p.get("success_url"),
                "cancel_url": p.get("cancel_url"),
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                "created": now,
                "expires_at": now + DAY,
                "livemode": False,
                # Kept for complete_checkout (Stripe keeps them too, behind other endpoints).
                "line_items": p.get("line_items", {}),
                "subscription_data": p.get("subscription_data", {}),
            }
            self.sessions[session_id] = session
            return 200, {
                k: v for k, v in session.items() if k not in ("line_items", "subscription_data")
            }
        if request.method == "POST" and request.path == "/v1/billing_portal/sessions":
            if p.get("customer") not in self.customers:
                return 400, _error(
                    f"No such customer: '{p.get('customer')}'", code="resource_missing"
                )
            portal_id = new_id("bps")
            return 200, {
                "id": portal_id,
                "object": "billing_portal.session",
                "created": now,
                "customer": p["customer"],
                "livemode": False,
                "return_url": p.get("return_url"),
                "url": f"https://billing.stripe.com/p/session/{portal_id}",
            }
        if request.method == "GET" and request.path.startswith("/v1/subscriptions/"):
            sub_id = request.path.rsplit("/", 1)[1]
            if sub_id not in self.subscriptions:
                return 404, _error(f"No such subscription: '{sub_id}'", code="resource_missing")
            return 200, self.subscriptions[sub_id]
        if request.method == "GET" and request.path == "/v1/subscriptions":
            return 200, self._list(p)
        return 404, _error(f"Unrecognized request URL ({request.method}: {request.path})")

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        items = sorted(self.subscriptions.values(), key=lambda s: s["id"])
        if params.get("status", "all") != "all":
            items = [s for s in items if s["status"] == params["status"]]
        after = params.get("starting_after")
        if after:
            items = [s for s in items if s["id"] > after]
        limit = int(params.get("limit", 10))
        return {
            "object": "list",
            "data": items[:limit],
            "has_more": len(items) > limit,
            "url": "/v1/subscriptions",
        }


def _error(
    message: str, kind: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(
            raw, keep_blank_values=True
        )
        request = Request(
            self.command,
            url.path,
            {k.lower(): v for k, v in self.headers.items()},
            unflatten(pairs),
        )
        status, body = self.server.stripe.answer(request)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:14]}")
        self.send_header("stripe-version", API_VERSION)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stripe: FakeStripe) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stripe = stripe


class StripeServer:
    """Runs a `FakeStripe` on a free port in a background thread."""

    def __init__(self) -> None:
        self.stripe = FakeStripe()
        self._server = _Server(self.stripe)
        self.stripe.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeStripe:
        self._thread.start()
        return self.stripe

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
