"""Sends one signed Whop `chat.message.created` webhook to a running gateway (a demo aid).

uv run python scripts/send_whop_message.py --secret ws_demo --community exp_demo --user user_1
"""

from __future__ import annotations

import argparse
import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook


def chat_message(community_id: str, user_id: str, text: str) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": f"msg_{uuid.uuid4().hex[:16]}",
        "api_version": "v1",
        "type": "chat.message.created",
        "timestamp": now,
        "company_id": "biz_demo",
        "data": {
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
                "user": {"id": user_id, "name": user_id, "username": user_id},
                "view_count": 0,
                "poll": None,
                "poll_votes": [],
                "reaction_counts": [],
            },
            "reason": "channel_message",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/webhooks/whop")
    parser.add_argument("--secret", required=True, help="the ws_… webhook secret")
    parser.add_argument("--community", required=True, help="experience id, e.g. exp_demo")
    parser.add_argument("--user", required=True, help="Whop user id, e.g. user_1")
    parser.add_argument("--text", default="gm everyone")
    args = parser.parse_args()

    body = json.dumps(chat_message(args.community, args.user, args.text))
    webhook_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    # Whop's secret is used as raw bytes; the library expects them base64-encoded.
    signature = Webhook(base64.b64encode(args.secret.encode()).decode()).sign(webhook_id, now, body)
    reply = httpx.post(
        args.url,
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    print(reply.status_code, reply.text)


if __name__ == "__main__":
    main()
