"""The company view (issue 20) in a real browser on the real stack: a Whop admin of an
enterprise company opens it from the dashboard home and sees both communities' numbers for 30
days, the company board with names (and its period tabs), the charts with a line per community
and downloads the CSV; a free company's admin gets the upgrade panel naming the plan; a member
of the company is refused."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.test_company_analytics import company_plan
from tests.gateway.test_company_board import _message
from tests.support.faults import eventually
from tests.support.gateway import bearer, new_account
from tests.support.stack import Stack
from tests.support.whop_api import FakeWhop
from tests.web.conftest import OpenPage, Shoot, new_user
from tests.web.test_dashboard import deliver_messages, shoot_both
from wee5.billing.v1 import billing_pb2
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import ACCESS_COOKIE
from wee5_gateway.db.models import CommunityRole
from wee5_kit.grpc import channel

pytestmark = pytest.mark.e2e


async def count_on_company_board(stack: Stack, community_id: str) -> None:
    """Turns the community's opt-in on (409 until xp learned its company from a webhook)."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        for _ in range(50):
            answer = await http.put(
                f"/api/v1/communities/{community_id}/company-board",
                json={"in_company_board": True},
                headers=bearer(GatewaySettings(), platform_admin=True),
            )
            if answer.status_code != 409:
                break
            await asyncio.sleep(0.2)
        assert answer.status_code == 200, answer.text


def name_of(user_id: str) -> str:
    """The name Whop's stand-in gives the user in its webhooks."""
    return f"Member {user_id.removeprefix('user_')}"


def new_company(whop: FakeWhop) -> tuple[str, str, str]:
    company = f"biz_{uuid.uuid4().hex[:10]}"
    return company, whop.add_experience(company, "Main Room"), whop.add_experience(company, "VIP")


async def as_company_admin(
    whop: FakeWhop, as_whop_user: OpenPage, company: str, *communities: str, level: str = "admin"
) -> Page:
    user = new_user()
    whop.access_levels[(user, company)] = level
    for community_id in communities:
        whop.access_levels[(user, community_id)] = level
    return await as_whop_user(user)


@dataclass
class Played:
    company: str
    main: str
    vip: str
    ada: str
    others: list[str]


async def played_company(stack: Stack, whop: FakeWhop) -> Played:
    """main: ada, bob, cy chat (60 XP); vip: ada, dan (40 XP); ada is active in both. Both
    count on the company board; the company is on enterprise."""
    company, main, vip = new_company(whop)
    ada, bob, cy, dan = (new_user() for _ in range(4))
    await deliver_messages(stack, company, main, [ada, bob, cy])
    await deliver_messages(stack, company, vip, [ada, dan])
    await count_on_company_board(stack, main)
    await count_on_company_board(stack, vip)
    await company_plan(stack, company, billing_pb2.PLAN_ENTERPRISE)
    return Played(company, main, vip, ada, [bob, cy, dan])


async def check_communities(page: Page, played: Played, dashboard: str) -> None:
    """Both communities' 30 days, most XP first, linked to their dashboards; the totals."""
    rows = page.locator("table.communities tbody tr")
    await expect(rows).to_have_count(2)
    first, second = rows.nth(0), rows.nth(1)
    await expect(first.locator("a.community")).to_have_text("Main Room")
    await expect(first.locator("a.community")).to_have_attribute(
        "href", f"{dashboard}/{played.main}"
    )
    await expect(first.locator(".active")).to_have_text("3")
    await expect(first.locator(".xp")).to_have_text("60")
    await expect(first.locator(".level-ups")).to_have_text("0")
    await expect(first.locator(".rewards")).to_have_text("0")
    await expect(second.locator("a.community")).to_have_text("VIP")
    await expect(second.locator("a.community")).to_have_attribute(
        "href", f"{dashboard}/{played.vip}"
    )
    await expect(second.locator(".active")).to_have_text("2")
    await expect(second.locator(".xp")).to_have_text("40")
    await expect(page.locator('[data-stat="active-members"] b')).to_have_text("4")
    await expect(page.locator('[data-stat="members-in-several"] b')).to_have_text("1")
    await expect(page.locator('[data-stat="xp"] b')).to_have_text("100")


async def check_board_and_movers(page: Page, played: Played) -> None:
    """The board sums a member's XP across the communities, with their names; ada moved most,
    in two communities."""
    board = page.locator("#company-board tbody tr")
    await expect(board).to_have_count(4)
    await expect(board.first.locator(".name")).to_have_text(name_of(played.ada))
    names = await board.locator(".name").all_inner_texts()
    assert sorted(names) == sorted(name_of(u) for u in (played.ada, *played.others))
    assert await board.locator(".xp").all_inner_texts() == ["40", "20", "20", "20"]
    mover = page.locator(".movers tbody tr").first
    await expect(mover.locator(".name")).to_have_text(name_of(played.ada))
    await expect(mover.locator(".xp")).to_have_text("40")
    await expect(mover.locator(".communities")).to_have_text("2")


async def check_charts(page: Page) -> None:
    """XP and active members per day: a line per community, a point per day of the 30."""
    charts = page.locator("svg.chart.lines")
    await expect(charts).to_have_count(2)
    for index in range(2):
        lines = charts.nth(index).locator("polyline.line")
        await expect(lines).to_have_count(2)
        await expect(lines.nth(0)).to_have_attribute("data-series", "Main Room")
        await expect(lines.nth(1)).to_have_attribute("data-series", "VIP")
        points = (await lines.nth(0).get_attribute("points") or "").split()
        assert len(points) == 30


async def check_csv(page: Page, played: Played, folder: Path) -> None:
    """The CSV link is the JSON route's: its Content-Disposition makes it a download (in Whop
    with the token the iframe sends with every request)."""
    async with page.expect_download() as started:
        await page.locator("a.csv").click()
    download = await started.value
    saved = folder / "company.csv"
    await download.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(table) == 60  # 30 days × 2 communities
    assert {row["community_id"] for row in table} == {played.main, played.vip}
    assert sum(int(row["xp"]) for row in table) == 100


async def test_an_enterprise_company_admin_sees_every_community_the_board_and_the_charts(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot, tmp_path: Path
) -> None:
    played = await played_company(web_stack, whop)
    page = await as_company_admin(whop, as_whop_user, played.company, played.main, played.vip)

    await page.goto(f"/dashboard/{played.company}")
    await expect(page.locator("a.community")).to_have_text(["Main Room", "VIP"])
    await shoot_both(page, shoot, "company-home")
    await page.locator("a.company-view").click()
    await page.wait_for_url(f"**/dashboard/{played.company}/company")

    await check_communities(page, played, f"/dashboard/{played.company}")
    await check_board_and_movers(page, played)
    await check_charts(page)
    await shoot_both(page, shoot, "company-view")

    # The period tabs swap the board in place (the answer is the board alone).
    async with page.expect_response("**/company?period=day") as swapped:
        await page.locator("#company-board .period-tabs a", has_text="Today").click()
    fragment = await (await swapped.value).text()
    assert 'id="company-board"' in fragment
    assert "communities" not in fragment
    await page.wait_for_url("**/company?period=day")
    await expect(page.locator("#company-board")).to_have_count(1)
    await expect(page.locator("table.communities tbody tr")).to_have_count(2)
    await expect(page.locator("#company-board .period-tabs a.active")).to_have_text("Today")
    await expect(page.locator("#company-board tbody tr")).to_have_count(4)

    await check_csv(page, played, tmp_path)


async def test_outside_whop_an_admin_of_every_community_sees_the_company_view(
    web_stack: Stack,
    whop: FakeWhop,
    anonymous: OpenPage,
    sessionmaker: async_sessionmaker[AsyncSession],
    shoot: Shoot,
    tmp_path: Path,
) -> None:
    """An account (signed in at /app: the access cookie) that owns one community and is an
    admin of the other: its home links to the company view."""
    played = await played_company(web_stack, whop)
    account = await new_account(sessionmaker, played.main, "owner")
    async with sessionmaker.begin() as session:
        session.add(CommunityRole(account_id=account, community_id=played.vip, role="admin"))
    page = await signed_in(web_stack, anonymous, account)

    await page.goto("/app/")
    link = page.locator("a.company-view")
    await expect(link).to_have_count(1)
    await expect(link).to_have_attribute("href", f"/app/companies/{played.company}")
    async with page.expect_navigation() as opened:
        await link.click()
    answer = await opened.value

    assert answer is not None
    assert answer.status == 200
    await check_communities(page, played, "/app/dashboard")
    await check_board_and_movers(page, played)
    await check_charts(page)
    await check_csv(page, played, tmp_path)
    await shoot(page, "company-view-app")

    # An admin of one community of the two: no link, and refused.
    one = await new_account(sessionmaker, played.main, "admin")
    page = await signed_in(web_stack, anonymous, one)
    await page.goto("/app/")
    await expect(page.locator("a[href^='/app/dashboard/']")).to_have_count(1)
    await expect(page.locator("a.company-view")).to_have_count(0)
    refused = await page.goto(f"/app/companies/{played.company}")
    assert refused is not None
    assert refused.status == 403


async def signed_in(stack: Stack, anonymous: OpenPage, account: uuid.UUID) -> Page:
    """A browser signed in at /app as `account` (its access cookie)."""
    page = await anonymous()
    token = bearer(GatewaySettings(), account)["Authorization"].removeprefix("Bearer ")
    await page.context.add_cookies([{"name": ACCESS_COOKIE, "value": token, "url": stack.base_url}])
    return page


async def test_a_free_companys_admin_gets_the_upgrade_panel(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, main, vip = new_company(whop)
    page = await as_company_admin(whop, as_whop_user, company, main, vip)

    answer = await page.goto(f"/dashboard/{company}/company")

    assert answer is not None
    assert answer.status == 402
    panel = page.locator(".company-upgrade")
    await expect(panel).to_have_attribute("data-required-plan", "enterprise")
    await expect(panel.locator(".plan-name")).to_have_text("Enterprise")
    await expect(page.locator("table.communities")).to_have_count(0)
    await shoot_both(page, shoot, "company-view-upgrade")


async def test_a_member_of_the_company_is_refused_and_sees_no_link_to_it(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, main, vip = new_company(whop)
    await company_plan(web_stack, company, billing_pb2.PLAN_ENTERPRISE)
    page = await as_company_admin(whop, as_whop_user, company, main, vip, level="customer")

    answer = await page.goto(f"/dashboard/{company}/company")

    assert answer is not None
    assert answer.status == 403
    await expect(page.locator(".error h1")).to_have_text("Not allowed")
    await expect(page.locator("table.communities")).to_have_count(0)
    await shoot(page, "company-view-member-refused")


async def test_an_admin_of_one_community_only_gets_no_link_and_is_refused(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage
) -> None:
    """Whop says admin on a community, not on the company: the home lists the community and
    no company view."""
    company, main, _ = new_company(whop)
    await company_plan(web_stack, company, billing_pb2.PLAN_ENTERPRISE)
    page = await as_whop_user(new_user(), community_id=main, level="admin")

    await page.goto(f"/dashboard/{company}")
    await expect(page.locator("a.community")).to_have_count(1)
    await expect(page.locator("a.company-view")).to_have_count(0)
    answer = await page.goto(f"/dashboard/{company}/company")
    assert answer is not None
    assert answer.status == 403


async def test_a_groups_owner_opens_the_groups_company_view_from_the_app_home(
    web_stack: Stack,
    anonymous: OpenPage,
    sessionmaker: async_sessionmaker[AsyncSession],
    shoot: Shoot,
) -> None:
    """A WEE5 group (`grp_…`, two servers outside Whop) is a company too: its owner's /app home
    links to its view, with each server's figures and the board across them."""
    first, second = (str(10**17 + uuid.uuid4().int % 10**17) for _ in range(2))
    owner = await new_account(sessionmaker, first, "owner")
    async with sessionmaker.begin() as session:
        session.add(CommunityRole(account_id=owner, community_id=second, role="owner"))
    headers = bearer(GatewaySettings(), owner)
    async with (
        httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http,
        channel(web_stack.env["WEE5_XP_ADDR"]) as xp_channel,
    ):
        created = await http.post("/api/v1/groups", json={"name": "My servers"}, headers=headers)
        assert created.status_code == 201, created.text
        group: str = created.json()["group_id"]
        for community in (first, second):
            added = await http.put(
                f"/api/v1/groups/{group}/communities/{community}", headers=headers
            )
            assert added.status_code == 200, added.text
        xp = xp_pb2_grpc.XpServiceStub(xp_channel)

        async def xp_knows_the_group() -> bool:
            reply = await xp.GetCompany(xp_pb2.GetCompanyRequest(company_id=group))
            return {c.community_id for c in reply.communities} == {first, second}

        await eventually(xp_knows_the_group, within=20)
        for community, user in ((first, "user_gina"), (first, "user_hal"), (second, "user_gina")):
            await _message(xp, community, user)
    for community in (first, second):
        await count_on_company_board(web_stack, community)
    await company_plan(web_stack, group, billing_pb2.PLAN_ENTERPRISE)
    page = await signed_in(web_stack, anonymous, owner)

    await page.goto("/app/")
    await page.locator(f"a.company-view[href='/app/companies/{group}']").click()
    await page.wait_for_url(f"**/app/companies/{group}")

    rows = page.locator("table.communities tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator("a.community")).to_have_text(first)
    await expect(rows.nth(0).locator(".xp")).to_have_text("40")
    await expect(rows.nth(1).locator(".xp")).to_have_text("20")
    await expect(page.locator('[data-stat="members-in-several"] b')).to_have_text("1")
    board = page.locator("#company-board tbody tr")
    await expect(board).to_have_count(2)
    await expect(board.first.locator(".name")).to_have_text("Name of user_gina")
    await expect(board.first.locator(".xp")).to_have_text("40")
    await shoot(page, "company-view-group")
