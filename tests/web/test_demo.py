"""`WEE5_DEMO=1` (what `make up` sets): the gateway seeds the demo community at startup through
the services' own RPCs, a newcomer signs in with the printed account, and a second startup
adds nothing. Its own stacks (not the session's page stack): the demo is off there."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.stack import Stack, start_stack, stop_stack
from tests.web.conftest import Shoot
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


async def newcomer_signs_in_from_discover(stack: Stack, browser: Browser, shoot: Shoot) -> None:
    """The discover page says how to open the demo; its link leads through the sign-in with
    the demo account to the demo community (the list of one's communities stands in for the
    member page where that view is not served)."""
    context = await browser.new_context(
        base_url=stack.base_url, viewport={"width": 1100, "height": 900}
    )
    try:
        page = await context.new_page()
        await page.goto("/discover")
        notice = page.locator(".demo")
        await expect(notice).to_contain_text(
            f"Sign in as {DEMO_EMAIL} with password {DEMO_PASSWORD}"
        )
        await shoot(page, "discover-demo")
        await notice.get_by_role("link", name="open the demo community").click()
        await page.wait_for_url(re.compile(r"/app/sign-in\?next=/app/experiences/demo$"))
        await page.fill("input[name=email]", DEMO_EMAIL)
        await page.fill("input[name=password]", DEMO_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"**/app/experiences/{DEMO_COMMUNITY}")
        await page.goto("/app/")
        await expect(page.locator(".list li", has_text=DEMO_COMMUNITY)).to_contain_text("owner")
        await shoot(page, "demo-owner-home")
    finally:
        await context.close()


async def test_the_demo_community_is_seeded_once_with_named_members_rules_and_an_owner(
    database_url: str,
    test_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    browser: Browser,
    shoot: Shoot,
) -> None:
    first = await asyncio.to_thread(
        start_stack, test_env, tmp_path_factory.mktemp("demo"), WEE5_DEMO="1"
    )
    try:
        seeded = await asyncio.to_thread(demo_state, first)
        printed = await asyncio.to_thread(printout, first)
        await newcomer_signs_in_from_discover(first, browser, shoot)
    finally:
        await asyncio.to_thread(stop_stack, first)

    for line in (
        f"{first.base_url}/discover",
        f"{first.base_url}/app/sign-in",
        f"{first.base_url}/app/experiences/{DEMO_COMMUNITY}",
        f"{first.base_url}/app/dashboard/{DEMO_COMMUNITY}",
        f"sign in as {DEMO_EMAIL} with password {DEMO_PASSWORD}",
    ):
        assert line in printed
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

    second = await asyncio.to_thread(
        start_stack, test_env, tmp_path_factory.mktemp("demo"), WEE5_DEMO="1"
    )
    try:
        again = await asyncio.to_thread(demo_state, second)
        report = last_seed_report(second)
    finally:
        await asyncio.to_thread(stop_stack, second)

    assert again == seeded
    assert report["activities_recorded"] == 0
    assert report["xp_imported_members"] == 0
    assert report["rules_created"] == 0
    assert report["badge_created"] is False
    assert report["badges_awarded"] == 0
    assert report["account_created"] is False
    assert report["role_granted"] is False
