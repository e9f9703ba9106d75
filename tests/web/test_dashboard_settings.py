"""The dashboard's settings pages in a real browser on the real stack, as a Whop admin sees
them: the XP rules with their level-table preview (computed by xp before anything is saved)
and the webhooks that follow the saved rules; adjusting a member's XP with a reason; field
errors and the plan a change needs; reward rules and badges."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Dialog, Page, Request, ViewportSize, expect

from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack
from tests.support.whop import chat_message_created, sign_standard
from tests.support.whop_api import FakeWhop
from tests.web.conftest import COMPANY, OpenPage, Shoot, new_experience, new_user
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}


def platform_admin() -> dict[str, str]:
    return bearer(GatewaySettings(), platform_admin=True)


async def set_plan(stack: Stack, community_id: str, plan: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.put(
            f"/api/v1/communities/{community_id}/plan",
            json={"plan": plan, "reason": "page test"},
            headers=platform_admin(),
        )
    assert answer.status_code == 200, answer.text


async def message(stack: Stack, experience_id: str, user_id: str) -> None:
    """A signed `chat.message.created` webhook from Whop, as the member posting in chat."""
    body = json.dumps(chat_message_created(experience_id, user_id, company_id=COMPANY)).encode()
    headers = sign_standard(SECRET, body, f"msg_{uuid.uuid4().hex}", int(time.time()))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.post("/webhooks/whop", content=body, headers=headers)
    assert answer.status_code in (200, 202, 204), answer.text


async def member_card(stack: Stack, community_id: str, user_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.get(
            f"/api/v1/communities/{community_id}/members/{user_id}", headers=platform_admin()
        )
    assert answer.status_code == 200, answer.text
    card: dict[str, Any] = answer.json()
    return card


async def snap(page: Page, shoot: Shoot, name: str) -> None:
    """A screenshot from the top, where the sticky bar belongs."""
    await page.evaluate("window.scrollTo(0, 0)")
    await shoot(page, name)


def admin_page(experience_id: str, rest: str) -> str:
    return f"/dashboard/{COMPANY}/{experience_id}{rest}"


def writes(page: Page) -> list[str]:
    """Every request that is not a read, as it is made."""
    seen: list[str] = []

    def note(request: Request) -> None:
        if request.method not in ("GET", "HEAD"):
            seen.append(f"{request.method} {request.url}")

    page.on("request", note)
    return seen


async def test_an_admin_previews_a_new_curve_saves_it_with_no_cooldown_and_webhooks_obey(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    experience = new_experience(whop)
    admin, member = new_user(), new_user()
    await set_plan(web_stack, experience, "premium")
    await message(web_stack, experience, member)  # 20 XP under the default rules: level 1
    page = await as_whop_user(admin, community_id=experience, level="admin")

    await page.goto(admin_page(experience, "/settings"))
    level_5_total = page.locator("#levels-preview tr[data-level='5'] td.total")
    await expect(level_5_total).to_have_text("770")  # MEE6 steps: 100 + 155 + 220 + 295
    assert await page.input_value("input[name=cooldown_seconds]") == "60"
    made = writes(page)

    await page.fill("input[name=cooldown_seconds]", "0")
    await page.select_option("select[name='curve.preset']", "custom")
    await page.select_option("select[name='curve.shape']", "linear")
    await page.fill("input[name='curve.coefficients']", "0, 50")

    # The table follows the curve as it is typed, before anything is saved.
    await expect(level_5_total).to_have_text("200")
    await expect(page.locator("#levels-preview tr[data-level='2'] td.total")).to_have_text("50")
    assert made == []
    await snap(page, shoot, "xp-settings-preview")

    await page.get_by_role("button", name="Save XP settings").click()
    await expect(page.locator(".notice.good")).to_contain_text("Saved")
    assert [call.split(" ")[0] for call in made] == ["POST"]
    assert await page.input_value("input[name=cooldown_seconds]") == "0"
    assert await page.input_value("input[name='curve.coefficients']") == "0, 50"
    await snap(page, shoot, "xp-settings-saved")
    await page.set_viewport_size(PHONE)
    await snap(page, shoot, "xp-settings-phone")
    await page.emulate_media(color_scheme="dark")
    await snap(page, shoot, "xp-settings-phone-dark")

    # Cooldown 0: two quick messages both earn; 60 XP is level 2 on the new curve (not on
    # the old one, where level 2 costs 100).
    await message(web_stack, experience, member)
    await message(web_stack, experience, member)
    card = await member_card(web_stack, experience, member)
    assert (card["xp"], card["level"]) == (60, 2)


async def test_an_admin_adjusts_a_members_xp_with_a_reason_and_sees_it_in_the_history(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    experience = new_experience(whop)
    admin, member = new_user(), new_user()
    await message(web_stack, experience, member)
    page = await as_whop_user(admin, community_id=experience, level="admin")

    await page.goto(admin_page(experience, "/members"))
    short = member.removeprefix("user_")
    await page.fill("input[name=q]", f"member {short}")
    row = page.locator("#member-results tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(f"Member {short}")
    await snap(page, shoot, "members-search")
    await row.locator("text=Open").click()
    await expect(page.locator("#member-xp")).to_have_text("20")

    await page.fill("input[name=delta]", "150")
    await page.fill("input[name=reason]", "Won the weekly challenge")
    await page.get_by_role("button", name="Adjust XP").click()
    await expect(page.locator(".notice.good")).to_contain_text("Added 150 XP")
    await expect(page.locator("#member-xp")).to_have_text("170")
    newest = page.locator("table.history tbody tr").first
    await expect(newest).to_contain_text("Won the weekly challenge")
    await expect(newest).to_contain_text("+150")
    await snap(page, shoot, "member-adjusted")
    await page.set_viewport_size(PHONE)
    await snap(page, shoot, "member-adjusted-phone")

    card = await member_card(web_stack, experience, member)
    assert card["xp"] == 170


async def test_a_negative_cooldown_is_a_field_error_and_a_free_plan_says_what_it_needs(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    experience = new_experience(whop)
    admin = new_user()
    page = await as_whop_user(admin, community_id=experience, level="admin")
    await page.goto(admin_page(experience, "/settings"))
    await expect(page.locator(".plan-required")).to_contain_text("premium")

    await page.select_option("select[name='curve.preset']", "custom")
    await page.select_option("select[name='curve.shape']", "cubic")
    await page.fill("input[name='curve.coefficients']", "1, 2")
    await expect(page.locator(".preview-errors")).to_contain_text(
        "curve.coefficients: a cubic curve takes 4 coefficients"
    )
    await expect(page.locator("#levels-preview")).to_have_count(0)
    await page.select_option("select[name='curve.preset']", "default")
    await expect(page.locator("#levels-preview tr[data-level='2'] td.total")).to_have_text("100")

    await page.fill("input[name=cooldown_seconds]", "-5")
    await page.get_by_role("button", name="Save XP settings").click()
    error = page.locator("#err-cooldown_seconds")
    await expect(error).to_contain_text(">= 0")
    assert await page.get_attribute("input[name=cooldown_seconds]", "aria-invalid") == "true"
    assert await page.input_value("input[name=cooldown_seconds]") == "-5"
    await snap(page, shoot, "xp-settings-field-error")

    await page.fill("input[name=cooldown_seconds]", "0")
    await page.get_by_role("button", name="Save XP settings").click()
    notice = page.locator(".plan-required")
    await expect(notice).to_have_attribute("data-status", "402")
    await expect(notice).to_contain_text("needs the premium plan; this community is on free")
    await expect(page.locator(".notice.good")).to_have_count(0)
    await snap(page, shoot, "xp-settings-free-plan")

    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        config = await http.get(
            f"/api/v1/communities/{experience}/xp-config", headers=platform_admin()
        )
    assert config.json()["cooldown_seconds"] == 60


async def test_an_admin_manages_reward_rules_and_creates_and_awards_a_badge(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    experience = new_experience(whop)
    admin, member = new_user(), new_user()
    await set_plan(web_stack, experience, "enterprise")
    page = await as_whop_user(admin, community_id=experience, level="admin")

    await page.goto(admin_page(experience, "/badges"))
    await page.fill("input[name=name]", "Early bird")
    await page.fill("textarea[name=description]", "Here from day one")
    await page.get_by_role("button", name="Create badge").click()
    await expect(page.locator(".notice.good")).to_contain_text("Early bird")
    await page.select_option("select[name='award.badge_id']", label="Early bird")
    await page.fill("input[name='award.user_id']", member)
    await page.get_by_role("button", name="Award", exact=True).click()
    await expect(page.locator(".notice.good")).to_contain_text(f"{member} now holds")
    await snap(page, shoot, "badges")

    await page.goto(admin_page(experience, "/rewards"))
    await page.fill("input[name=level]", "7")
    await page.select_option("select[name=kind]", "free_days")
    await page.fill("input[name=free_days]", "0")
    await page.get_by_role("button", name="Save rule").click()
    await expect(page.locator("#err-free_days")).to_contain_text(">= 1")

    await page.fill("input[name=free_days]", "3")
    await page.get_by_role("button", name="Save rule").click()
    rule = page.locator("table.rules tr[data-level='7']")
    await expect(rule).to_contain_text("3 free days")

    await rule.locator("text=Edit").click()
    await page.select_option("select[name=kind]", "badge")
    await page.select_option("select[name=badge_id]", label="Early bird")
    await page.get_by_role("button", name="Save rule").click()
    await expect(rule).to_contain_text("Badge: Early bird")
    await snap(page, shoot, "rewards")
    await page.set_viewport_size(PHONE)
    await snap(page, shoot, "rewards-phone")

    async def confirm(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", confirm)
    await rule.locator("text=Delete").click()
    await expect(page.locator(".notice.good")).to_contain_text("Level 7: rule removed")
    await expect(rule).to_have_count(0)

    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        held = await http.get(
            f"/api/v1/communities/{experience}/members/{member}/badges",
            headers=platform_admin(),
        )
    assert [b["badge"]["name"] for b in held.json()["member_badges"]] == ["Early bird"]


async def test_a_member_who_is_not_an_admin_may_not_open_the_settings(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage
) -> None:
    experience = new_experience(whop)
    page = await as_whop_user(new_user(), community_id=experience, level="customer")

    for rest in ("/settings", "/settings/levels?curve.preset=linear", "/members", "/badges"):
        answer = await page.goto(admin_page(experience, rest))
        assert answer is not None
        assert answer.status == 403, rest
    await expect(page.locator(".error h1")).to_have_text("Not allowed")


async def test_rules_xp_refuses_show_next_to_their_fields(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    experience = new_experience(whop)
    await set_plan(web_stack, experience, "premium")
    page = await as_whop_user(new_user(), community_id=experience, level="admin")
    await page.goto(admin_page(experience, "/settings"))

    await page.fill("input[name='post.min']", "30")
    await page.fill("input[name=timezone]", "Mars/Olympus_Mons")
    await page.get_by_role("button", name="Save XP settings").click()

    await expect(page.locator("#err-post-min")).to_have_text("min must not exceed max")
    await expect(page.locator("#err-timezone")).to_contain_text("IANA time zone")
    await expect(page.locator(".notice.good")).to_have_count(0)
    await snap(page, shoot, "xp-settings-refused-by-xp")
