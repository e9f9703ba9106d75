"""The body a webhook delivery is acknowledged with."""

from __future__ import annotations

from typing import Literal

import msgspec

# awarded | skipped (earned nothing, e.g. cooldown) | duplicate (seen before) |
# ignored (not an event WEE5 acts on) | recorded (a membership change was stored) |
# stale (a newer membership change was already stored)
Outcome = Literal["awarded", "skipped", "duplicate", "ignored", "recorded", "stale"]


class WebhookAck(msgspec.Struct):
    status: Outcome
