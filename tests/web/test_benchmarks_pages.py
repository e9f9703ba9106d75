"""Benchmarks pages in a real browser on the real stack: a member answers a category, sees the
service's refusal next to the field at fault, fixes it, and — once enough others answered —
sees where they stand on a distribution drawn as SVG; below the privacy floor the page says
why there is no number. Admins approve held outliers from the review queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.support.stack import Stack
from tests.support.whop_api import FakeWhop
from tests.web.conftest import COMPANY, OpenPage, Shoot, new_experience, new_user
from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub

pytestmark = pytest.mark.e2e
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1100, "height": 900}


@pytest.fixture
async def benchmarks(web_stack: Stack) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(web_stack.env["WEE5_BENCHMARKS_ADDR"]) as channel:
        yield benchmarks_pb2_grpc.BenchmarksServiceStub(channel)


async def enable(stub: Stub, community_id: str) -> None:
    await stub.UpdateCommunitySettings(
        benchmarks_pb2.UpdateCommunitySettingsRequest(
            community_id=community_id, enabled=True, updated_by="test-owner"
        )
    )


async def answer(
    stub: Stub, community_id: str, answers: dict[str, Any]
) -> benchmarks_pb2.SubmitBenchmarkResponse:
    request = benchmarks_pb2.SubmitBenchmarkRequest(
        community_id=community_id,
        user_id=new_user(),
        category=benchmarks_pb2.CATEGORY_COMPENSATION,
    )
    request.answers.update(answers)
    reply: benchmarks_pb2.SubmitBenchmarkResponse = await stub.SubmitBenchmark(request)
    return reply


async def fill_compensation(page: Page, *, salary: str, commission: str) -> None:
    await page.select_option("select[name=role]", "sdr")
    await page.select_option("select[name=region]", "europe")
    await page.fill("input[name=base_salary]", salary)
    await page.fill("input[name=commission_rate]", commission)
    await page.click("#answers button[type=submit]")


async def test_a_member_fixes_a_refused_answer_and_sees_where_they_stand(
    web_stack: Stack,
    whop: FakeWhop,
    as_whop_user: OpenPage,
    benchmarks: Stub,
    shoot: Shoot,
) -> None:
    exp = new_experience(whop, "Outbound Guild")
    await enable(benchmarks, exp)
    member = new_user()
    page = await as_whop_user(member, community_id=exp)

    await page.goto(f"/experiences/{exp}/benchmarks?category=compensation")
    floor = page.locator("#results .notice.floor")
    await expect(floor).to_contain_text("Below the privacy floor")
    await expect(floor).to_contain_text("Fewer than 5 members")
    assert await page.locator("#results svg").count() == 0
    await shoot(page, "benchmarks-below-floor")

    # A commission rate over 100 %: the service refuses that field, and only that one.
    await fill_compensation(page, salary="72000", commission="150")
    error = page.locator("#field-commission_rate .field-error")
    await expect(error).to_have_text("Commission rate must be at most 100 %")
    await expect(page.locator("input[name=commission_rate]")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert await page.locator(".field-error").count() == 1
    await expect(page.locator("input[name=base_salary]")).to_have_value("72000")
    await expect(page.locator("select[name=region]")).to_have_value("europe")
    await shoot(page, "benchmarks-field-error")

    await page.fill("input[name=commission_rate]", "12")
    await page.click("#answers button[type=submit]")
    await expect(page.locator("#answers .notice.good")).to_contain_text("Saved")
    await expect(page.locator("#submissions tr[data-category=compensation]")).to_contain_text(
        "counted"
    )
    # Only the member's own answer: still under the floor.
    await expect(page.locator("#results .notice.floor")).to_be_visible()

    # Five others answer (the floor counts answers besides the reader's own).
    for salary in (50_000, 60_000, 65_000, 80_000, 90_000):
        await answer(
            benchmarks,
            exp,
            {"role": "sdr", "region": "europe", "base_salary": salary, "commission_rate": 10},
        )
    await page.reload()
    salary_result = page.locator("#results .result[data-field=base_salary]")
    await expect(salary_result.locator(".percentile")).to_contain_text("percentile")
    chart = salary_result.locator("svg.distribution")
    await expect(chart).to_be_visible()
    assert await chart.locator("rect.band.p10-p90").count() == 1
    assert await chart.locator("rect.band.p25-p75").count() == 1
    assert await chart.locator("line.median").count() == 1
    you = chart.locator("g.you text")
    await expect(you).to_contain_text("You:")
    await expect(you).to_contain_text("percentile (72k)")
    await expect(chart.locator("text.median-label")).to_contain_text("median")
    assert await page.locator("#results .notice.floor").count() == 0
    await shoot(page, "benchmarks-results")
    await page.set_viewport_size(PHONE)
    await shoot(page, "benchmarks-results-phone")


async def test_an_admin_approves_a_held_outlier(
    web_stack: Stack,
    whop: FakeWhop,
    as_whop_user: OpenPage,
    benchmarks: Stub,
    shoot: Shoot,
) -> None:
    exp = new_experience(whop, "Review Room")
    await enable(benchmarks, exp)
    for step in range(12):
        await answer(
            benchmarks,
            exp,
            {"role": "sdr", "region": "europe", "base_salary": 50_000 + step * 1000},
        )
    held = await answer(
        benchmarks, exp, {"role": "sdr", "region": "europe", "base_salary": 990_000}
    )
    assert held.submission.flagged

    admin = new_user()
    page = await as_whop_user(admin, community_id=exp, level="admin")
    await page.goto(f"/dashboard/{COMPANY}/{exp}/benchmarks/review")
    item = page.locator(f"#review-{held.submission.id}")
    await expect(item.locator("tr.outlier")).to_contain_text("Base salary")
    await expect(item.locator("tr.outlier")).to_contain_text("990,000")
    await shoot(page, "benchmarks-review-queue")
    await page.set_viewport_size(PHONE)
    await shoot(page, "benchmarks-review-queue-phone")
    await page.set_viewport_size(DESKTOP)

    # No reason: refused next to the field, nothing decided.
    await item.locator("button[value=approve]").click()
    await expect(page.locator(f"#review-{held.submission.id} .field-error")).to_be_visible()
    await page.fill(f"#review-{held.submission.id} input[name=reason]", "a real founder's pay")
    await page.locator(f"#review-{held.submission.id} button[value=approve]").click()
    await expect(page.locator(".notice.good")).to_contain_text("accepted")
    assert await page.locator(f"#review-{held.submission.id}").count() == 0
