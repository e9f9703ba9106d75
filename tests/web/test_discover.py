"""The discover view: anyone, without credentials, learns what WEE5 does, sees the plans with
the prices billing's catalogue lists, and sample renderings of a board and a rank card."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.support.stack import Stack
from tests.web.conftest import OpenPage, Shoot

pytestmark = pytest.mark.e2e


async def test_anyone_sees_what_wee5_does_the_plans_with_prices_and_samples(
    web_stack: Stack, anonymous: OpenPage, shoot: Shoot
) -> None:
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        catalogue = (await http.get("/api/v1/plans")).json()["plans"]
    premium = next(plan for plan in catalogue if plan["plan"] == "premium")
    monthly = next(p for p in premium["prices"] if p["interval"] == "monthly")

    page = await anonymous()
    answer = await page.goto("/discover")
    assert answer is not None
    assert answer.status == 200

    await expect(page.locator("h1")).to_have_text("Reward the members who make your community")
    for feature in (
        "XP for taking part",
        "Levels and leaderboards",
        "Rewards through Whop",
        "Badges and roles",
        "Benchmarks",
        "Resource library",
        "Analytics",
    ):
        await expect(page.locator(".feature h3", has_text=feature)).to_have_count(1)
    # Prices come from the catalogue (the stack sells premium monthly and yearly only).
    plans = page.locator(".plan")
    await expect(plans).to_have_count(len(catalogue))
    premium_card = page.locator('.plan[data-plan="premium"]')
    await expect(premium_card.locator(".price").first).to_have_text(
        f"${monthly['amount_minor'] // 100} / month"
    )
    await expect(page.locator('.plan[data-plan="free"] .price')).to_have_text("Free forever")
    await expect(page.locator('.plan[data-plan="enterprise"] .price')).to_have_text(
        "Not on sale here yet"
    )
    await expect(premium_card).to_contain_text("Community analytics")
    # The sample board: medals for the top three, initials for avatars, progress bars.
    board = page.locator(".sample-board")
    await expect(board.locator(".medal")).to_have_count(3)
    await expect(board.locator(".medal.gold")).to_have_text("1")
    await expect(board.locator("tbody tr").first.locator(".avatar")).to_have_text("AM")
    await expect(board.locator("svg.progress").first).to_be_visible()
    # The sample card.
    card = page.locator(".rank-card")
    await expect(card.locator(".name")).to_have_text("Lena Fischer")
    await expect(card).to_contain_text("265 / 580 XP to level 8")
    await expect(page.get_by_role("link", name="Sign in outside Whop")).to_have_attribute(
        "href", "/app/sign-in"
    )
    # Only a local run with WEE5_DEMO shows the demo community's account.
    await expect(page.locator(".demo")).to_have_count(0)
    await shoot(page, "discover-1100")
    await page.emulate_media(color_scheme="dark")
    await shoot(page, "discover-1100-dark")

    phone = await anonymous(width=390)
    await phone.goto("/discover")
    await expect(phone.locator(".rank-card .name")).to_have_text("Lena Fischer")
    overflow = await phone.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert overflow is False, "the page is wider than a phone's screen"
    await shoot(phone, "discover-390")


async def test_discover_may_be_framed_by_whop_and_also_answers_under_app(
    web_stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        in_whop = await http.get("/discover")
        outside = await http.get("/app/discover")
    assert in_whop.status_code == 200
    assert (
        "frame-ancestors https://whop.com https://*.whop.com"
        in (in_whop.headers["content-security-policy"])
    )
    assert "x-frame-options" not in in_whop.headers
    assert outside.status_code == 200
    assert "Reward the members who make your community" in outside.text
    assert "frame-ancestors 'none'" in outside.headers["content-security-policy"]
