"""Bodies of the setup context."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Check(msgspec.Struct):
    """One thing set up or not: `ok` is null when it cannot be told, and `detail` says why."""

    ok: bool | None
    detail: str


class RejectedWebhook(msgspec.Struct):
    webhook_id: str
    event_type: str
    reason: str | None
    received_at: datetime


class CommunitySetup(msgspec.Struct):
    community_id: str
    # The Whop company the community belongs to, once Whop told (null: not a Whop community
    # yet, or Whop could not be asked).
    company_id: str | None
    # The other communities (experiences) of the same company that WEE5 knows.
    company_communities: list[str]
    # The URL to set as the webhook endpoint in the Whop dashboard.
    webhook_url: str
    webhook_secret: Check
    # Acknowledged Whop webhooks about this community (receipts record it since 0004).
    webhooks_received: int
    # The latest authentic deliveries about it that could not be used (acknowledged, so Whop
    # does not redeliver them), newest first.
    webhooks_rejected: list[RejectedWebhook]
    whop_api_key: Check
    # The community's plan (`free` until a plan is set), or null when billing did not answer.
    plan: str | None
