"""The xp process's own metrics: the group commit of activities (batch sizes, commit latency)
and the activities a cooldown skipped."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from wee5_kit.metrics import LATENCY_BUCKETS

BATCH_ACTIVITIES = Histogram(
    "wee5_xp_batch_activities",
    "Activities committed together in one transaction of a writer (the group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
BATCH_COMMIT_SECONDS = Histogram(
    "wee5_xp_batch_commit_seconds",
    "Time to record and commit one batch of activities, by outcome (committed, failed).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
BATCH_COMMITTED = BATCH_COMMIT_SECONDS.labels("committed")
BATCH_FAILED = BATCH_COMMIT_SECONDS.labels("failed")
COOLDOWN_SKIPS = Counter(
    "wee5_xp_cooldown_skips_total",
    "Activities recorded as skipped because the member's cooldown was running.",
)
