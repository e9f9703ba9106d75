"""The bot's Prometheus metrics (served on WEE5_METRICS_PORT by wee5_kit.metrics)."""

from __future__ import annotations

from prometheus_client import Counter

DISCORD_EVENTS = Counter(
    "wee5_discord_events_total",
    "Discord Gateway events the bot handled, by kind (message, reaction, member_join, guild) "
    "and outcome: recorded (queued for xp), ignored (a bot, a webhook, a system message), "
    "bound (a server of a community: its slash commands are registered), unbound (a server "
    "bound to no community), failed (rewards or xp did not answer).",
    ["kind", "outcome"],
)
ACTIVITIES_SENT = Counter(
    "wee5_discord_activities_total",
    "Activities the bot sent to xp, by outcome: sent (xp took them), dropped (xp refused one).",
    ["outcome"],
)
WELCOMES = Counter(
    "wee5_discord_welcomes_total",
    "Welcome messages and onboarding DMs, by what (welcome, dm) and outcome: sent, refused "
    "(Discord's 4xx), failed (after the last attempt).",
    ["what", "outcome"],
)
