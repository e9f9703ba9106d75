"""`WEE5_DEMO=1` (what `make up` sets): the gateway seeds the demo community at startup through
the services' own RPCs, and a second startup adds nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack, start_stack, stop_stack
from wee5_gateway.demo import (
    DEMO_BADGE,
    DEMO_COMMUNITY,
    DEMO_EMAIL,
    DEMO_MEMBERS,
    DEMO_OWNER_MEMBER,
    DEMO_PASSWORD,
    DEMO_RULES,
)

pytestmark = pytest.mark.e2e


def demo_state(stack: Stack) -> dict[str, Any]:
    """What the demo looks like through the JSON API, signed in as the demo account."""
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        # The stack counts as up only once the demo is seeded.
        assert http.get("/readyz").json()["checks"]["demo"] == "ok"
        login = http.post(
            "/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        me = http.get("/api/v1/me").json()
        community = f"/api/v1/communities/{DEMO_COMMUNITY}"
        board = http.get(f"{community}/leaderboard", params={"limit": 100})
        assert board.status_code == 200, board.text
        rules = http.get(f"{community}/reward-rules").json()["rules"]
        badges = http.get(f"{community}/badges").json()["badges"]
        owner_card = http.get(f"{community}/members/{DEMO_OWNER_MEMBER}").json()
        plan = http.get(f"{community}/plan").json()
    return {
        "roles": [(r["community_id"], r["role"]) for r in me["roles"]],
        "board": board.json(),
        "rules": sorted((r["level"], r["kind"]) for r in rules),
        "badges": [b["name"] for b in badges],
        "owner_badges": owner_card["badges"],
        "plan": plan["plan"],
    }


def last_seed_report(stack: Stack) -> dict[str, Any]:
    reports = [
        json.loads(line[line.index("{") :])
        for line in stack.log.read_text(errors="replace").splitlines()
        if "demo community ready" in line and "{" in line
    ]
    assert reports, f"the gateway never said the demo was ready:\n{stack.output()}"
    report: dict[str, Any] = reports[-1]
    return report


def printout(stack: Stack) -> str:
    """What `make up` printed once the stack was ready (it prints right after /readyz says 200,
    which may be a moment after the tests saw it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = stack.log.read_text(errors="replace")
        if "WEE5 is up" in log:
            return log[log.index("WEE5 is up") :]
        time.sleep(0.2)
    raise AssertionError(f"the stack never said it was up:\n{stack.output()}")


def test_the_demo_community_is_seeded_once_with_named_members_rules_and_an_owner(
    database_url: str, test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = start_stack(test_env, tmp_path_factory.mktemp("demo"), WEE5_DEMO="1")
    try:
        seeded = demo_state(first)
        printed = printout(first)
        discover = httpx.get(f"{first.base_url}/discover", timeout=10).text
    finally:
        stop_stack(first)

    for line in (
        f"{first.base_url}/discover",
        f"{first.base_url}/app/sign-in",
        f"{first.base_url}/app/experiences/{DEMO_COMMUNITY}",
        f"{first.base_url}/app/dashboard/{DEMO_COMMUNITY}",
        f"sign in as {DEMO_EMAIL} with password {DEMO_PASSWORD}",
    ):
        assert line in printed
    # The discover page tells a newcomer how to open the demo.
    assert f"<code>{DEMO_EMAIL}</code>" in discover
    assert "/app/sign-in?next=/app/experiences/demo" in discover
    assert (DEMO_COMMUNITY, "owner") in seeded["roles"]
    entries = seeded["board"]["entries"]
    assert len(entries) == len(DEMO_MEMBERS) == 12
    names = {m.user_id: m.name for m in DEMO_MEMBERS}
    assert {e["user_id"]: e["display_name"] for e in entries} == names
    assert [e["user_id"] for e in entries[:3]] == ["demo_ava", "demo_noah", "demo_mia"]
    levels = {e["level"] for e in entries}
    assert min(levels) == 1
    assert max(levels) >= 13
    assert len(levels) >= 10, "the members should be spread over the levels"
    # The owner is linked to a member: the board shows where they stand.
    assert seeded["board"]["me"]["user_id"] == DEMO_OWNER_MEMBER
    for level in DEMO_RULES:
        assert any(rule_level == level for rule_level, _ in seeded["rules"])
    assert seeded["badges"] == [DEMO_BADGE]
    assert seeded["plan"] == "enterprise"

    second = start_stack(test_env, tmp_path_factory.mktemp("demo"), WEE5_DEMO="1")
    try:
        again = demo_state(second)
        report = last_seed_report(second)
    finally:
        stop_stack(second)

    assert again == seeded
    assert report["activities_recorded"] == 0
    assert report["xp_imported_members"] == 0
    assert report["rules_created"] == 0
    assert report["badge_created"] is False
    assert report["badges_awarded"] == 0
    assert report["account_created"] is False
    assert report["role_granted"] is False
