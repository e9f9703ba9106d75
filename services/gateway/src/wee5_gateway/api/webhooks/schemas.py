"""The body a webhook delivery is acknowledged with."""

from __future__ import annotations

from typing import Literal

import msgspec

# awarded | skipped (earned nothing, e.g. cooldown) | duplicate (seen before) |
# ignored (not an event WEE5 acts on) | recorded (a membership change was stored) |
# stale (a newer membership change was already stored) | rejected (authentic, but not
# usable: not JSON, not UTF-8, an id WEE5 cannot store; acknowledged so it is not redelivered)
Outcome = Literal["awarded", "skipped", "duplicate", "ignored", "recorded", "stale", "rejected"]


class WebhookAck(msgspec.Struct, omit_defaults=True):
    status: Outcome
    # Why a rejected delivery could not be used.
    reason: str | None = None
