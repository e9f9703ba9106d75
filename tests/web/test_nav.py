"""One product, one nav: every admin view (dashboard, settings, benchmark review, resources)
shows the dashboard's nav, every member view (experience, benchmarks, resources) the member
tabs; admins move between the two with the "Dashboard" and "Member view" links."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.support.stack import Stack
from tests.support.whop_api import FakeWhop
from tests.web.conftest import OpenPage, Shoot, new_user
from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

pytestmark = pytest.mark.e2e
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1100, height=900)
MEMBER_TABS = ["Overview", "Leaderboard", "My profile", "Benchmarks", "Resources"]


@pytest.fixture
async def benchmarks(web_stack: Stack) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(web_stack.env["WEE5_BENCHMARKS_ADDR"]) as channel:
        yield benchmarks_pb2_grpc.BenchmarksServiceStub(channel)


async def enable_benchmarks(stub: Stub, community_id: str) -> None:
    await stub.UpdateCommunitySettings(
        benchmarks_pb2.UpdateCommunitySettingsRequest(
            community_id=community_id, enabled=True, updated_by="test-owner"
        )
    )


async def shoot_both(page: Page, shoot: Shoot, name: str) -> None:
    await shoot(page, name)
    await page.set_viewport_size(PHONE)
    await shoot(page, f"{name}-phone")
    await page.set_viewport_size(DESKTOP)


async def test_an_admin_goes_from_the_member_tabs_to_the_dashboard_and_through_its_one_nav(
    whop: FakeWhop, as_whop_user: OpenPage, benchmarks: Stub, shoot: Shoot
) -> None:
    company = f"biz_{uuid.uuid4().hex[:10]}"
    exp = whop.add_experience(company, "Trading Floor")
    await enable_benchmarks(benchmarks, exp)
    page = await as_whop_user(new_user(), community_id=exp, level="admin")
    tabs = page.locator(".topbar .tabs a")

    await page.goto(f"/experiences/{exp}/benchmarks")
    await expect(tabs).to_have_text(MEMBER_TABS)
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Benchmarks")
    await shoot_both(page, shoot, "nav-member-benchmarks")

    await page.locator(".topbar .who a", has_text="Dashboard").click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}")
    await expect(tabs.filter(has_text="Benchmarks")).to_have_attribute(
        "href", f"/dashboard/{company}/{exp}/benchmarks/review"
    )
    await expect(tabs.filter(has_text="Resources")).to_have_attribute(
        "href", f"/dashboard/{company}/{exp}/resources"
    )

    await tabs.filter(has_text="Settings").click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}/settings")
    await expect(page.locator("h1")).to_have_text("XP settings")
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Settings")
    await expect(tabs.filter(has_text="Billing")).to_have_count(1)  # the first admin: owner
    await shoot_both(page, shoot, "nav-dashboard-settings")

    await tabs.filter(has_text="Benchmarks").click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}/benchmarks/review")
    await expect(page.locator("h1")).to_have_text("Benchmark review")
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Benchmarks")

    await tabs.filter(has_text="Resources").click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}/resources")
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Resources")
    await expect(page.locator('.sub-tabs a[aria-current="page"]')).to_have_text("Library")
    await shoot_both(page, shoot, "nav-dashboard-resources")
    await page.locator(".sub-tabs a", has_text="Downloads").click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}/resources/stats")
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Resources")
    await expect(page.locator('.sub-tabs a[aria-current="page"]')).to_have_text("Downloads")

    await page.locator(".topbar .who a", has_text="Member view").click()
    await page.wait_for_url(f"**/experiences/{exp}")
    await expect(tabs).to_have_text(MEMBER_TABS)


async def test_a_member_sees_the_same_tabs_in_every_member_view_and_no_dashboard_link(
    whop: FakeWhop, as_whop_user: OpenPage, benchmarks: Stub
) -> None:
    exp = whop.add_experience(f"biz_{uuid.uuid4().hex[:10]}", "Trading Floor")
    await enable_benchmarks(benchmarks, exp)
    page = await as_whop_user(new_user(), community_id=exp)
    tabs = page.locator(".topbar .tabs a")

    await page.goto(f"/experiences/{exp}")
    await expect(tabs).to_have_text(MEMBER_TABS)
    await tabs.filter(has_text="Resources").click()
    await page.wait_for_url(f"**/experiences/{exp}/resources")
    await expect(page.locator("h1")).to_have_text("Resources")
    await expect(tabs).to_have_text(MEMBER_TABS)
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Resources")
    await expect(page.locator(".topbar .who a", has_text="Dashboard")).to_have_count(0)
    await tabs.filter(has_text="Benchmarks").click()
    await page.wait_for_url(f"**/experiences/{exp}/benchmarks")
    await expect(page.locator('.topbar .tabs a[aria-current="page"]')).to_have_text("Benchmarks")
    await expect(page.locator(".topbar .who a", has_text="Dashboard")).to_have_count(0)
