"""Bodies of the liveness and readiness probes."""

from __future__ import annotations

import msgspec


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, omit_defaults=True):
    status: str
    # For internal callers only: "ok" or "unavailable" for "database" and each downstream
    # service; with WEE5_DEMO on, "demo" is "seeding" until the demo community is seeded.
    checks: dict[str, str] | None = None
