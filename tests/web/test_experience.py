"""The experience view in a real browser on the real stack: a Whop member's rank card, the
leaderboard (medals, periods, name search, their own row pinned, jump to their rank), their
rewards and XP history, a live toast when a webhook levels them up (once, in the words of the
community's template), names that are text whatever they contain, and the refusals (no access,
no Whop token)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Dialog, Page, ViewportSize, expect

from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack
from tests.support.whop import chat_message_created, sign_standard
from tests.support.whop_api import FakeWhop
from tests.support.whop_tokens import WhopSigningKey
from tests.web.conftest import OpenPage, Shoot, new_experience, new_user
from tests.web.test_dashboard import set_plan
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
# Members imported without names, all with more XP than the viewer: the viewer is on page 2.
IMPORTED = 120


@pytest.fixture
async def api(web_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The JSON API as a platform admin (webhooks need no credentials; setting XP up does)."""
    async with httpx.AsyncClient(
        base_url=web_stack.base_url,
        timeout=10,
        headers=bearer(GatewaySettings(), platform_admin=True),
    ) as client:
        yield client


async def say(api: httpx.AsyncClient, experience_id: str, user_id: str, name: str) -> None:
    """A signed `chat.message.created` from Whop by a user called `name` (a distinct message
    and webhook id each time)."""
    payload: dict[str, Any] = chat_message_created(
        experience_id, user_id, message_id=f"msg_{uuid.uuid4().hex}"
    )
    payload["data"]["message"]["user"].update(name=name, username=name.split()[0].lower())
    body = json.dumps(payload).encode()
    headers = sign_standard(SECRET, body, f"msg_{uuid.uuid4().hex}", int(time.time()))
    answer = await api.post("/webhooks/whop", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


async def give_points(
    api: httpx.AsyncClient, experience_id: str, user_id: str, points: int
) -> None:
    answer = await api.post(
        f"/api/v1/communities/{experience_id}/points",
        json={
            "user_id": user_id,
            "reason": "contest",
            "points": points,
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert answer.status_code == 200, answer.text


async def import_crowd(api: httpx.AsyncClient, experience_id: str) -> None:
    answer = await api.post(
        f"/api/v1/communities/{experience_id}/imports",
        json={
            "source": "api",
            "members": [
                {"user_id": f"user_crowd{n:03d}", "xp": 150 + 2 * n} for n in range(IMPORTED)
            ],
        },
    )
    assert answer.status_code == 200, answer.text


async def top_three_and_a_crowd(api: httpx.AsyncClient, experience_id: str) -> None:
    """Ada, Grace and Linus (named by Whop) lead; IMPORTED unnamed members follow."""
    for name, points in (("Ada Lovelace", 5000), ("Grace Hopper", 4000), ("Linus Torvalds", 3000)):
        user = new_user()
        await say(api, experience_id, user, name)
        await give_points(api, experience_id, user, points)
    await import_crowd(api, experience_id)


async def board_names(page: Page) -> list[str]:
    return await page.locator("#board table.leaderboard tbody:not(.pinned) .name").all_inner_texts()


async def on_phone(page: Page, shoot: Shoot, name: str) -> None:
    size = page.viewport_size
    await page.set_viewport_size(PHONE)
    await shoot(page, name + "-phone")
    if size is not None:
        await page.set_viewport_size(size)


async def test_a_member_sees_their_card_the_board_and_their_level_up_live(
    api: httpx.AsyncClient, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    me = new_user()
    await top_three_and_a_crowd(api, exp)
    # 90 XP: level 1, 10 XP short of level 2 (the default curve's first step costs 100).
    await give_points(api, exp, me, 90)

    page = await as_whop_user(me, community_id=exp, level="customer")
    async with page.expect_response(lambda r: r.url.endswith(f"/{exp}/stream")):
        await page.goto(f"/experiences/{exp}")

    card = page.locator("#my-card")
    await expect(card.locator(".level")).to_have_text("Level 1")
    await expect(card.locator(".progress-numbers")).to_contain_text("90 / 100 XP to level 2")
    await expect(card.locator(".rank-all")).to_have_text(f"#{3 + IMPORTED + 1}")
    rows = page.locator("#board table.leaderboard tbody:not(.pinned) tr")
    await expect(rows).to_have_count(100)
    assert (await board_names(page))[:3] == ["Ada Lovelace", "Grace Hopper", "Linus Torvalds"]
    await expect(rows.nth(0).locator(".medal.gold")).to_have_text("1")
    await expect(rows.nth(1).locator(".medal.silver")).to_have_text("2")
    await expect(rows.nth(2).locator(".medal.bronze")).to_have_text("3")
    await expect(rows.nth(3).locator(".medal")).to_have_count(0)
    await expect(rows.nth(0).locator(".avatar")).to_have_text("AL")
    # Off the first page, my own row is pinned under it.
    pinned = page.locator("#board tbody.pinned tr.me")
    await expect(pinned.locator(".rank")).to_have_text(str(3 + IMPORTED + 1))
    await shoot(page, "experience-overview")
    await on_phone(page, shoot, "experience-overview")

    # My first message: 110 XP, level 2, announced on the live stream in the words of the
    # community's (default) level-up template.
    await say(api, exp, me, "Zoe Viewer")
    await expect(page.locator("#toasts .toast")).to_have_text(
        "🎉 Zoe Viewer reached level 2!", timeout=5000
    )
    # The card reloads itself when the level-up arrives.
    await expect(card.locator(".level")).to_have_text("Level 2")
    await expect(card.locator(".name")).to_have_text("Zoe Viewer")
    await shoot(page, "experience-level-up-toast")

    await page.locator(".period-tabs a", has_text="Week").click()
    await expect(page.locator(".period-tabs a.active")).to_have_text("Week")
    await expect(page).to_have_url(f"/experiences/{exp}?period=week")
    await expect(rows.first.locator(".name")).to_have_text("Ada Lovelace")
    await shoot(page, "experience-week")

    await page.locator("input[name=search]").fill("grace")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".name")).to_have_text("Grace Hopper")
    await expect(rows.first.locator(".rank")).to_have_text("2")
    await shoot(page, "experience-search")
    await on_phone(page, shoot, "experience-search")

    await page.locator(".period-tabs a", has_text="All time").click()
    await expect(page.locator(".period-tabs a.active")).to_have_text("All time")
    await page.locator("a.jump-to-me").click()
    mine = page.locator("#board tbody:not(.pinned) tr.me")
    await expect(mine.locator(".rank")).to_have_text(str(3 + IMPORTED + 1))
    await expect(mine.locator(".name")).to_have_text("Zoe Viewer")
    await expect(page.locator("#board tbody.pinned")).to_have_count(0)
    await shoot(page, "experience-my-rank")


async def test_a_level_up_toast_shows_the_communitys_template_once_and_as_text(
    api: httpx.AsyncClient,
    web_stack: Stack,
    whop: FakeWhop,
    as_whop_user: OpenPage,
    shoot: Shoot,
) -> None:
    exp = new_experience(whop)
    me = new_user()
    await set_plan(web_stack, exp, "premium")  # templates are premium
    # Announcements stay off: nothing is posted in chat, the app still uses the template.
    settings = await api.put(
        f"/api/v1/communities/{exp}/announcement-settings",
        json={"enabled": False, "level_up_template": "Nice one {member}: level {level}!"},
    )
    assert settings.status_code == 200, settings.text
    await give_points(api, exp, me, 90)
    page = await as_whop_user(me, community_id=exp, level="customer")
    async with page.expect_response(lambda r: r.url.endswith(f"/{exp}/stream")):
        await page.goto(f"/experiences/{exp}")

    await say(api, exp, me, "<i>Zoe</i> @everyone")
    toasts = page.locator("#toasts .toast")
    expected = "Nice one <i>Zoe</i> @\u200beveryone: level 2!"
    await expect(toasts).to_have_text([expected], timeout=5000)
    # Past the time the generic "Level up!" toast waits for it: still the one toast.
    await page.wait_for_timeout(2500)
    await expect(toasts).to_have_text([expected])
    await expect(page.locator("#toasts i")).to_have_count(0)  # text, not markup
    await expect(page.locator("#my-card .level")).to_have_text("Level 2")
    assert all(m["channel_id"] != exp for m in whop.messages)  # nothing posted in chat
    await shoot(page, "experience-announcement-toast")


async def test_the_profile_shows_my_rewards_ahead_and_my_xp_history(
    api: httpx.AsyncClient, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    me = new_user()
    await say(api, exp, me, "Mia Member")
    await give_points(api, exp, me, 100)

    page = await as_whop_user(me, community_id=exp)
    await page.goto(f"/experiences/{exp}/profile")

    await expect(page.locator("#my-card .name")).to_have_text("Mia Member")
    await expect(page.locator("#my-card .level")).to_have_text("Level 2")
    # The default rules: level 5 earns 3 free days, level 10 seven, …
    first = page.locator(".reward-list li").first
    await expect(first.locator(".what")).to_have_text("3 free days")
    await expect(first.locator(".state")).to_have_text("3 levels to go")
    history = page.locator(".history tbody tr")
    await expect(history).to_have_count(2)
    await expect(history.nth(0)).to_contain_text("+100")
    await expect(history.nth(1)).to_contain_text("+20")
    await shoot(page, "experience-profile")
    await on_phone(page, shoot, "experience-profile")
    await page.emulate_media(color_scheme="dark")
    await shoot(page, "experience-profile-dark")


async def test_the_leaderboard_deep_link_pages_through_the_board_on_a_phone(
    api: httpx.AsyncClient, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    await top_three_and_a_crowd(api, exp)
    page = await as_whop_user(new_user(), community_id=exp, level="admin")
    await page.set_viewport_size(PHONE)
    await page.goto(f"/experiences/{exp}/leaderboard")

    rows = page.locator("#board table.leaderboard tbody tr")
    await expect(rows).to_have_count(100)
    await expect(page.locator("#my-card")).to_have_count(0)
    await page.locator("a.next-page").click()
    await expect(rows).to_have_count(3 + IMPORTED - 100)
    await expect(rows.first.locator(".rank")).to_have_text("101")
    assert "cursor=" in page.url
    await shoot(page, "experience-leaderboard-page-2-phone")

    # Last week: nobody had earned anything yet.
    await page.locator(".period-tabs a", has_text="Week").click()
    await expect(rows.first.locator(".name")).to_have_text("Ada Lovelace")
    await page.locator("a.previous-period").click()
    await expect(page.locator("#board .empty")).to_have_text(
        "Nobody has earned XP in this period yet."
    )
    assert "at=" in page.url
    await shoot(page, "experience-previous-week-phone")
    await page.locator("a.current-period").click()
    await expect(rows.first.locator(".name")).to_have_text("Ada Lovelace")


async def test_a_bad_board_address_is_a_400_page(
    web_stack: Stack, whop: FakeWhop, whop_key: WhopSigningKey
) -> None:
    exp = new_experience(whop)
    me = new_user()
    whop.access_levels[(me, exp)] = "customer"
    headers = {"x-whop-user-token": whop_key.token(me, expires_in=600)}
    async with httpx.AsyncClient(base_url=web_stack.base_url, headers=headers) as browser:
        for query in ("period=year", "at=yesterday", "cursor=not-a-cursor", "search=" + "x" * 101):
            answer = await browser.get(f"/experiences/{exp}?{query}")
            assert answer.status_code == 400, (query, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert 'data-status="400"' in answer.text


async def test_the_json_board_searches_by_name_and_a_member_reads_their_reward_standing(
    api: httpx.AsyncClient, web_stack: Stack, whop: FakeWhop, whop_key: WhopSigningKey
) -> None:
    exp = new_experience(whop)
    await top_three_and_a_crowd(api, exp)
    me = new_user()
    await say(api, exp, me, "Grace Jones")
    await give_points(api, exp, me, 100)
    whop.access_levels[(me, exp)] = "customer"
    headers = {"x-whop-user-token": whop_key.token(me, expires_in=600)}
    async with httpx.AsyncClient(base_url=web_stack.base_url, headers=headers) as member:
        found = await member.get(
            f"/api/v1/communities/{exp}/leaderboard", params={"search": "GRACE"}
        )
        too_long = await member.get(
            f"/api/v1/communities/{exp}/leaderboard", params={"search": "g" * 101}
        )
        standing = await member.get(f"/api/v1/communities/{exp}/members/me/reward-standing")

    assert found.status_code == 200, found.text
    assert [(e["rank"], e["display_name"]) for e in found.json()["entries"]] == [
        (2, "Grace Hopper"),
        (124, "Grace Jones"),
    ]
    assert too_long.status_code == 400
    assert standing.status_code == 200, standing.text
    body = standing.json()
    assert (body["user_id"], body["level"]) == (me, 2)
    assert body["rewards"][0] == {
        "level": 5,
        "kind": "free_days",
        "state": "ahead",
        "levels_to_go": 3,
        "free_days": 3,
        "discount": None,
        "badge_id": None,
        "role_id": None,
        "granted_at": None,
    }
    assert [r["level"] for r in body["rewards"]] == [5, 10, 25, 50, 100]


async def test_a_member_without_xp_sees_how_to_earn_it(
    whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    page = await as_whop_user(new_user(), community_id=exp)
    await page.goto(f"/experiences/{exp}")
    await expect(page.locator("#my-card h1")).to_have_text("No XP yet")
    await expect(page.locator("#my-card .no-xp")).to_contain_text("earn your first XP")
    await expect(page.locator("#board .empty")).to_have_text(
        "Nobody has earned XP in this period yet."
    )
    await shoot(page, "experience-no-xp")

    await page.click("nav.tabs >> text=My profile")
    await expect(page.locator("section.history")).to_contain_text("No XP yet")
    await shoot(page, "experience-profile-no-xp")


async def test_a_hostile_display_name_is_shown_as_text(
    api: httpx.AsyncClient, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    villain = new_user()
    await say(api, exp, villain, HOSTILE)

    page = await as_whop_user(villain, community_id=exp)
    dialogs: list[str] = []

    async def note(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", note)
    await page.goto(f"/experiences/{exp}")

    await expect(page.locator("#board tr.me .name")).to_have_text(HOSTILE)
    await expect(page.locator("#my-card .name")).to_have_text(HOSTILE)
    await expect(page.locator("img[src=x]")).to_have_count(0)
    await expect(page.locator("main script")).to_have_count(0)
    await shoot(page, "experience-hostile-name")
    assert dialogs == []


async def test_a_whop_user_without_access_gets_the_forbidden_page(
    whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    page = await as_whop_user(new_user(), community_id=exp, level="no_access")
    answer = await page.goto(f"/experiences/{exp}")
    assert answer is not None
    assert answer.status == 403
    await expect(page.locator(".error h1")).to_have_text("Not allowed")
    await shoot(page, "experience-forbidden")


async def test_without_a_whop_token_the_page_says_to_open_it_from_whop(
    whop: FakeWhop, anonymous: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop)
    page = await anonymous()
    answer = await page.goto(f"/experiences/{exp}")
    assert answer is not None
    assert answer.status == 401
    await expect(page.locator(".error")).to_contain_text("Open WEE5 from your Whop community")
    await expect(page.locator(".error")).not_to_contain_text("API key")
    await shoot(page, "experience-no-token")
    await on_phone(page, shoot, "experience-no-token")
