"""Sends one signed Whop webhook to a running gateway, as Whop sends it (a local aid):
a chat message, which earns its author XP in the experience (community) it names, or a
membership event, which records the member's Whop membership (rewards and downloads need it).

uv run python scripts/send_whop_event.py --secret ws_demo chat.message.created --community demo --user user_1
uv run python scripts/send_whop_event.py --secret ws_demo membership.activated --user user_1

A membership event names a company, not an experience: the gateway applies it to the
communities a chat message from that company (`--company`, `biz_demo` by default for both)
made known. Exits 0 when the gateway answers 2xx, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

MEMBERSHIP_EVENTS = (
    "membership.activated",
    "membership.deactivated",
    "membership.cancel_at_period_end_changed",
    "membership.trial_ending_soon",
)
# Whop's membership statuses (what `--status` may be).
MEMBERSHIP_STATUSES = (
    "trialing", "active", "past_due", "completed", "canceled", "expired", "unresolved",
    "drafted", "canceling",
)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "name": user_id, "username": user_id}


def envelope(event_type: str, company_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:16]}",
        "api_version": "v1",
        "type": event_type,
        "timestamp": _now(),
        "company_id": company_id,
        "data": data,
    }


def chat_message(community_id: str, user_id: str, text: str) -> dict[str, Any]:
    now = _now()
    return {
        "audience": {"type": "channel", "user_ids": []},
        "channel": {"id": "feed_demo", "type": "chat", "experience_id": community_id},
        "message": {
            "id": f"post_{uuid.uuid4().hex[:16]}",
            "content": text,
            "created_at": now,
            "updated_at": now,
            "is_edited": False,
            "is_pinned": False,
            "mentions": [],
            "mentions_everyone": False,
            "message_type": "regular",
            "replying_to_message_id": None,
            "user": _user(user_id),
            "view_count": 0,
            "poll": None,
            "poll_votes": [],
            "reaction_counts": [],
        },
        "reason": "channel_message",
    }


def membership(
    company_id: str, user_id: str, membership_id: str, status: str, cancel_at_period_end: bool
) -> dict[str, Any]:
    now = _now()
    return {
        "id": membership_id,
        "status": status,
        "company": {"id": company_id, "title": company_id},
        "plan": {"id": "plan_demo"},
        "product": {"id": "prod_demo", "title": "Demo product"},
        "user": {**_user(user_id), "email": None},
        "member": {"id": f"mber_{user_id}"},
        "renewal_period_start": now,
        "renewal_period_end": None,
        "cancel_at_period_end": cancel_at_period_end,
        "created_at": now,
        "metadata": {},
    }


def signed_headers(secret: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers; Whop signs with the secret's raw bytes, which the library
    expects base64-encoded."""
    webhook_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(base64.b64encode(secret.encode()).decode()).sign(webhook_id, now, body)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def webhook_url(base: str) -> str:
    """The gateway's Whop webhook route under `base` (a base URL, or the route itself)."""
    base = base.rstrip("/")
    return base if base.endswith("/webhooks/whop") else f"{base}/webhooks/whop"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[3:]),
    )
    port = os.environ.get("WEE5_GATEWAY_PORT", "8000")
    parser.add_argument(
        "--url", default=f"http://127.0.0.1:{port}", help="the gateway's base URL (%(default)s)"
    )
    secret = os.environ.get("WEE5_WHOP_WEBHOOK_SECRET")
    parser.add_argument(
        "--secret",
        default=secret,
        required=secret is None,
        help="the ws_… webhook secret the gateway has (default: WEE5_WHOP_WEBHOOK_SECRET)",
    )
    parser.add_argument("--company", default="biz_demo", help="Whop company id (%(default)s)")
    events = parser.add_subparsers(dest="event", required=True, metavar="EVENT")
    chat = events.add_parser("chat.message.created", help="a chat message: XP for its author")
    chat.add_argument("--community", required=True, help="experience id, e.g. demo or exp_…")
    chat.add_argument("--user", required=True, help="Whop user id, e.g. user_1")
    chat.add_argument("--text", default="gm everyone")
    for name in MEMBERSHIP_EVENTS:
        event = events.add_parser(name, help="the member's Whop membership")
        event.add_argument("--user", required=True, help="Whop user id, e.g. user_1")
        event.add_argument("--membership", help="membership id (default: mem_<user>)")
        event.add_argument(
            "--status",
            choices=MEMBERSHIP_STATUSES,
            help="default: canceled for membership.deactivated, else active",
        )
        event.add_argument("--cancel-at-period-end", action="store_true")
    return parser


def build(args: argparse.Namespace) -> dict[str, Any]:
    if args.event == "chat.message.created":
        data = chat_message(args.community, args.user, args.text)
    else:
        default = "canceled" if args.event == "membership.deactivated" else "active"
        data = membership(
            args.company,
            args.user,
            args.membership or f"mem_{args.user}",
            args.status or default,
            args.cancel_at_period_end,
        )
    return envelope(args.event, args.company, data)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    body = json.dumps(build(args))
    try:
        reply = httpx.post(
            webhook_url(args.url), content=body, headers=signed_headers(args.secret, body)
        )
    except httpx.HTTPError as error:
        print(f"could not reach {webhook_url(args.url)}: {error}", file=sys.stderr)
        return 1
    print(reply.status_code, reply.text)
    return 0 if reply.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
