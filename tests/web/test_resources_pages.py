"""Resources pages in a real browser on the real stack: an admin uploads a PDF from the
browser straight to storage (the signed upload URL, across origins) and publishes it; a member
finds it by searching, opens it and downloads the very same bytes through the signed download
URL; a member without an active membership is told why not; admins see the download and
can edit and delete."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
from PIL import Image
from playwright.async_api import FilePayload, Page, ViewportSize, expect

from tests.support.stack import Stack
from tests.support.whop_api import FakeWhop
from tests.web.conftest import COMPANY, OpenPage, Shoot, new_experience, new_user
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.proto import to_timestamp

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

pytestmark = pytest.mark.e2e
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1100, "height": 900}


def small_pdf() -> bytes:
    """A real one-page PDF (Pillow writes it), different every time."""
    image = Image.new("RGB", (64, 48), (uuid.uuid4().int % 256, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PDF")
    return buffer.getvalue()


@pytest.fixture
async def xp(web_stack: Stack) -> AsyncIterator[XpServiceAsyncStub]:
    async with grpc.aio.insecure_channel(web_stack.env["WEE5_XP_ADDR"]) as channel:
        yield xp_pb2_grpc.XpServiceStub(channel)


async def activate(xp: XpServiceAsyncStub, community_id: str, user_id: str) -> None:
    """What a `membership.activated` webhook tells xp."""
    await xp.SetMembership(
        xp_pb2.SetMembershipRequest(
            membership=xp_pb2.Membership(
                company_id=COMPANY,
                user_id=user_id,
                membership_id=f"mem_{uuid.uuid4().hex[:12]}",
                status="active",
                active=True,
                updated_at=to_timestamp(datetime.now(UTC)),
            ),
            community_id=community_id,
        )
    )


async def shoot_both(shoot: Shoot, page: Page, name: str) -> None:
    """The page at desktop width, then at a phone's."""
    await shoot(page, name)
    await page.set_viewport_size(PHONE)
    await shoot(page, f"{name}-phone")
    await page.set_viewport_size(DESKTOP)


async def publish(page: Page, exp: str, pdf: bytes, title: str) -> None:
    await page.goto(f"/dashboard/{COMPANY}/{exp}/resources")
    await page.set_input_files(
        "#upload input[type=file]",
        files=FilePayload(name="cold-email-playbook.pdf", mimeType="application/pdf", buffer=pdf),
    )
    await page.fill("#upload input[name=title]", title)
    await page.fill("#upload textarea[name=description]", "Sequences that book <meetings>.")
    await page.select_option("#upload select[name=type]", "playbook")
    await page.fill("#upload input[name=tags]", "outbound, email")
    await page.click("#upload button[type=submit]")
    await expect(page.locator(".notice.good")).to_contain_text("Published")


async def test_an_admin_uploads_a_pdf_and_a_member_downloads_the_same_bytes(
    web_stack: Stack,
    whop: FakeWhop,
    as_whop_user: OpenPage,
    xp: XpServiceAsyncStub,
    shoot: Shoot,
) -> None:
    exp = new_experience(whop, "Agency Owners")
    admin = await as_whop_user(new_user(), community_id=exp, level="admin")

    # Publishing without a file: said next to the file field, nothing published.
    await admin.goto(f"/dashboard/{COMPANY}/{exp}/resources")
    await admin.fill("#upload input[name=title]", "No file")
    await admin.click("#upload button[type=submit]")
    await expect(admin.locator("#upload [data-upload-error]")).to_contain_text("choose a file")
    await shoot(admin, "resources-manage-no-file")

    pdf = small_pdf()
    await publish(admin, exp, pdf, "Cold email playbook")
    row = admin.locator("table.manage tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Cold email playbook")
    await expect(row).to_contain_text("cold-email-playbook.pdf")
    await shoot_both(shoot, admin, "resources-manage")

    member_id = new_user()
    await activate(xp, exp, member_id)
    member = await as_whop_user(member_id, community_id=exp)
    await member.goto(f"/experiences/{exp}/resources")
    cards = member.locator("#results li.resource")
    await expect(cards).to_have_count(1)
    # Searching updates the list as the member types (htmx), and the URL keeps the search.
    await member.fill("input[name=q]", "nothing like this zzz")
    await expect(member.locator("#results")).to_contain_text("Nothing matches")
    await member.fill("input[name=q]", "playbook")
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_contain_text("Cold email playbook")
    assert "q=playbook" in member.url
    await member.select_option("select[name=type]", "video")
    await expect(member.locator("#results")).to_contain_text("Nothing matches")
    await member.select_option("select[name=type]", "playbook")
    await expect(cards).to_have_count(1)
    await shoot_both(shoot, member, "resources-browse")

    await cards.first.locator("h2 a").click()
    await expect(member.locator("h1")).to_have_text("Cold email playbook")
    # The description is text, never markup.
    await expect(member.locator(".description")).to_have_text("Sequences that book <meetings>.")
    await shoot_both(shoot, member, "resources-detail")

    async with member.expect_download() as download_info:
        await member.click("button.download")
    download = await download_info.value
    assert download.suggested_filename == "cold-email-playbook.pdf"
    path = await download.path()
    assert path.read_bytes() == pdf

    # The admin sees the download.
    await admin.goto(f"/dashboard/{COMPANY}/{exp}/resources/stats")
    await expect(admin.locator(".stat").first).to_contain_text("1")
    await expect(admin.locator("table").first).to_contain_text("Cold email playbook")
    assert await admin.locator("svg.per-day rect.bar:not(.empty)").count() == 1
    await shoot_both(shoot, admin, "resources-stats")


async def test_an_admin_edits_and_deletes_a_resource(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop, "Editing Room")
    admin = await as_whop_user(new_user(), community_id=exp, level="admin")
    await publish(admin, exp, small_pdf(), "Cold email playbook")
    await admin.goto(f"/dashboard/{COMPANY}/{exp}/resources")
    await admin.click("table.manage a:has-text('Edit')")
    await admin.fill("input[name=title]", "")
    await admin.fill("input[name=tags]", "ok, " + "x" * 41)
    await admin.click("button:has-text('Save')")
    await expect(admin.locator(".field-error")).to_contain_text("length")
    await shoot(admin, "resources-edit-refused")
    await admin.fill("input[name=title]", "Cold email playbook v2")
    await admin.fill("input[name=tags]", "outbound")
    await admin.click("button:has-text('Save')")
    await expect(admin.locator("table.manage tbody tr")).to_contain_text("Cold email playbook v2")
    await admin.click("table.manage button:has-text('Delete')")
    await expect(admin.locator(".notice.good")).to_contain_text("Deleted")
    await expect(admin.locator("table.manage")).to_have_count(0)


async def test_a_member_without_an_active_membership_is_told_why_not(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    exp = new_experience(whop, "Closed Club")
    admin = await as_whop_user(new_user(), community_id=exp, level="admin")
    await publish(admin, exp, small_pdf(), "Members only")

    member = await as_whop_user(new_user(), community_id=exp)
    await member.goto(f"/experiences/{exp}/resources")
    await member.locator("#results li.resource h2 a").click()
    await member.click("button.download")
    refused = member.locator(".download-refused")
    await expect(refused).to_contain_text("downloads need an active membership")
    await expect(member.locator("h1")).to_have_text("Members only")
    await shoot(member, "resources-download-refused")
