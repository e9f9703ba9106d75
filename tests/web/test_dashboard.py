"""The dashboard view in a real browser on the real stack: a Whop admin picks a community and
sees its numbers; analytics on the free plan (7 days, three numbers) and on premium; the
upgrade button starts a Stripe Checkout (Stripe's local stand-in); API keys and the audit log
for the company's owner; members are refused."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest
from playwright.async_api import Locator, Page, Route, ViewportSize, expect

from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack
from tests.support.stripe import FakeStripe
from tests.support.stripe import event as stripe_event
from tests.support.stripe import sign as stripe_sign
from tests.support.whop import chat_message_created, sign_standard
from tests.support.whop_api import FakeWhop
from tests.support.whop_tokens import WhopSigningKey
from tests.web.conftest import OpenPage, Shoot, new_user
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e

PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1100, height=900)


def new_company(whop: FakeWhop) -> tuple[str, str]:
    """A company of its own (its first admin to arrive is its owner) with one community."""
    company = f"biz_{uuid.uuid4().hex[:10]}"
    return company, whop.add_experience(company, "Trading Floor")


async def deliver_messages(stack: Stack, company: str, community_id: str, users: list[str]) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        for user in users:
            message = chat_message_created(community_id, user, company_id=company)
            body = json.dumps(message)
            headers = sign_standard(
                SECRET, body.encode(), f"msg_{uuid.uuid4().hex}", int(time.time())
            )
            answer = await http.post(
                "/webhooks/whop",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            assert answer.status_code == 200, answer.text


async def set_plan(stack: Stack, community_id: str, plan: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.put(
            f"/api/v1/communities/{community_id}/plan",
            json={"plan": plan, "reason": "dashboard test"},
            headers=bearer(GatewaySettings(), platform_admin=True),
        )
        assert answer.status_code == 200, answer.text


async def shoot_both(page: Page, shoot: Shoot, name: str) -> None:
    """The view at desktop width and at a phone's (Whop's mobile app shows the iframe)."""
    await shoot(page, name)
    await page.set_viewport_size(PHONE)
    await shoot(page, f"{name}-phone")
    await page.set_viewport_size(DESKTOP)


def stat(page: Page, name: str) -> Locator:
    return page.locator(f'[data-stat="{name}"] b')


async def test_an_admin_picks_the_community_and_its_overview_counts_the_webhooks(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, exp = new_company(whop)
    whop.add_experience(company, "Quiet Room")  # where Whop says they are no admin: not listed
    admin = new_user()
    members = [new_user() for _ in range(3)]
    await deliver_messages(web_stack, company, exp, members)
    page = await as_whop_user(admin, community_id=exp, level="admin")

    await page.goto(f"/dashboard/{company}")
    links = page.locator("a.community")
    await expect(links).to_have_count(1)
    await expect(links).to_have_text("Trading Floor")
    await shoot_both(page, shoot, "dashboard-home")

    await links.click()
    await page.wait_for_url(f"**/dashboard/{company}/{exp}")
    await expect(stat(page, "members")).to_have_text("3")
    await expect(stat(page, "active-today")).to_have_text("3")
    await expect(stat(page, "active-week")).to_have_text("3")
    await expect(stat(page, "xp-today")).to_have_text("60")
    await expect(stat(page, "rewards-dead")).to_have_text("0")
    nav = page.locator(".topbar .tabs a")
    await expect(nav).to_have_text(
        [
            "Overview",
            "Analytics",
            "Settings",
            "Rewards",
            "Badges",
            "Members",
            "Benchmarks",
            "Resources",
            "Billing",
            "API keys",
            "Audit log",
        ]
    )
    await expect(nav.first).to_have_attribute("href", f"/dashboard/{company}/{exp}")
    await shoot_both(page, shoot, "dashboard-overview")


async def test_a_member_is_refused_the_dashboard(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, exp = new_company(whop)
    member = new_user()
    page = await as_whop_user(member, community_id=exp, level="customer")

    home = await page.goto(f"/dashboard/{company}")
    assert home is not None
    assert home.status == 403
    overview = await page.goto(f"/dashboard/{company}/{exp}")
    assert overview is not None
    assert overview.status == 403
    await expect(page.locator(".error h1")).to_have_text("Not allowed")
    analytics = await page.goto(f"/dashboard/{company}/{exp}/analytics")
    assert analytics is not None
    assert analytics.status == 403
    await shoot(page, "dashboard-member-refused")


async def test_the_free_plan_shows_seven_days_and_three_numbers_and_upgrade_starts_checkout(
    web_stack: Stack,
    whop: FakeWhop,
    stripe: FakeStripe,
    as_whop_user: OpenPage,
    shoot: Shoot,
) -> None:
    company, exp = new_company(whop)
    owner = new_user()
    await deliver_messages(web_stack, company, exp, [new_user(), new_user()])
    page = await as_whop_user(owner, community_id=exp, level="admin")

    await page.goto(f"/dashboard/{company}/{exp}/analytics")
    charts = page.locator("svg.chart")
    await expect(charts).to_have_count(2)
    for chart in await charts.all():
        await expect(chart.locator("rect.bar")).to_have_count(7)
    active = charts.first.locator("rect.bar").last
    await expect(active).to_have_attribute("data-value", "2")
    await expect(page.locator(".headline .stat")).to_have_count(3)
    await expect(stat(page, "xp")).to_have_text("40")
    await expect(stat(page, "new-members")).to_have_text("2")
    await expect(page.locator(".seg.ranges")).to_have_count(0)
    await expect(page.locator(".upsell")).to_contain_text("Premium")
    await shoot_both(page, shoot, "dashboard-analytics-free")

    await page.click(".upsell a.button")
    await page.wait_for_url(f"**/dashboard/{company}/{exp}/billing")
    await expect(stat(page, "plan")).to_have_text("Free")
    await shoot_both(page, shoot, "dashboard-billing-free")

    # Stripe's checkout page is not reachable from here: answer it locally and see the browser
    # arrive at the URL the checkout session carries.
    async def stripe_page(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<h1>Stripe Checkout</h1>")

    await page.route("https://checkout.stripe.com/**", stripe_page)
    before = len(stripe.calls("POST", "/v1/checkout/sessions"))
    monthly = page.locator('[data-plan="premium"] form.upgrade').filter(
        has=page.locator('input[value="monthly"]')
    )
    async with page.expect_request(re.compile(r"^https://checkout\.stripe\.com/")) as sent:
        await monthly.locator("button").click()
    arrived = (await sent.value).url

    sessions = stripe.calls("POST", "/v1/checkout/sessions")
    assert len(sessions) == before + 1
    params = sessions[-1].params
    assert params["line_items"]["0"]["price"] == "price_premium_monthly"
    assert params["subscription_data"]["metadata"]["community_id"] == exp
    assert params["success_url"].endswith(f"/dashboard/{company}/{exp}/billing?checkout=done")
    session = next(s for s in stripe.sessions.values() if s["url"] == arrived)
    assert session["subscription_data"]["metadata"]["community_id"] == exp
    await expect(page.locator("h1")).to_have_text("Stripe Checkout")

    await page.goto(f"/dashboard/{company}/{exp}/audit")
    await expect(page.locator('tr[data-action="billing.checkout_started"]')).to_have_count(1)
    await shoot_both(page, shoot, "dashboard-audit")


async def test_from_htmx_checkout_answers_hx_redirect_and_manage_billing_opens_the_portal(
    web_stack: Stack,
    whop: FakeWhop,
    whop_key: WhopSigningKey,
    stripe: FakeStripe,
    as_whop_user: OpenPage,
    shoot: Shoot,
) -> None:
    company, exp = new_company(whop)
    admin = new_user()
    page = await as_whop_user(admin, community_id=exp, level="admin")
    # The page's own API client is not the browser: it carries the token as Whop's proxy would.
    signed = {"x-whop-user-token": whop_key.token(admin), "HX-Request": "true"}
    await page.goto(f"/dashboard/{company}/{exp}/billing")

    # From htmx, the same call answers where to go in `HX-Redirect` (htmx then goes there).
    from_htmx = await page.request.post(
        f"/dashboard/{company}/{exp}/billing/checkout",
        form={"plan": "premium", "interval": "yearly"},
        headers=signed,
        max_redirects=0,
    )
    assert from_htmx.status == 200
    yearly = stripe.calls("POST", "/v1/checkout/sessions")[-1].params
    assert yearly["line_items"]["0"]["price"] == "price_premium_yearly"
    assert from_htmx.headers["hx-redirect"].startswith("https://checkout.stripe.com/")
    refused = await page.request.post(
        f"/dashboard/{company}/{exp}/billing/checkout",
        form={"plan": "free", "interval": "monthly"},
        headers=signed,
    )
    assert refused.status == 422
    assert "premium" in await refused.text()

    # Stripe confirms the payment: the page shows the subscription and "Manage billing".
    session_id = from_htmx.headers["hx-redirect"].rsplit("/", 1)[-1]
    session, _ = stripe.complete_checkout(session_id)
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        body = stripe_event("checkout.session.completed", session)
        confirmed = await http.post(
            "/webhooks/stripe",
            content=body,
            headers={"content-type": "application/json", "stripe-signature": stripe_sign(body)},
        )
        assert confirmed.status_code == 200, confirmed.text
    await page.goto(f"/dashboard/{company}/{exp}/billing")
    await expect(stat(page, "plan")).to_have_text("Premium")
    await expect(stat(page, "status")).to_have_text("Active")
    await expect(page.locator('[data-plan="premium"] form.upgrade')).to_have_count(0)
    await shoot_both(page, shoot, "dashboard-billing-premium")

    async def portal_page(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<h1>Stripe portal</h1>")

    await page.route("https://billing.stripe.com/**", portal_page)
    async with page.expect_request(re.compile(r"^https://billing\.stripe\.com/")):
        await page.click("text=Manage billing")
    await expect(page.locator("h1")).to_have_text("Stripe portal")
    opened = stripe.calls("POST", "/v1/billing_portal/sessions")[-1].params
    assert opened["customer"] == session["customer"]
    assert opened["return_url"].endswith(f"/dashboard/{company}/{exp}/billing")

    await page.goto(f"/dashboard/{company}/{exp}/audit")
    await expect(page.locator('tr[data-action="billing.portal_opened"]')).to_have_count(1)


async def test_premium_analytics_draws_every_chart_for_the_chosen_window(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, exp = new_company(whop)
    admin = new_user()
    movers = [new_user(), new_user(), new_user()]
    await deliver_messages(web_stack, company, exp, movers)
    await set_plan(web_stack, exp, "premium")
    page = await as_whop_user(admin, community_id=exp, level="admin")

    await page.goto(f"/dashboard/{company}/{exp}/analytics")
    charts = page.locator("svg.chart")
    await expect(charts).to_have_count(5)
    await expect(page.locator("svg.chart > title")).to_have_text(
        ["Active members", "XP awarded", "Activities by kind", "New members", "Level-ups"]
    )
    await expect(charts.first.locator("rect.bar")).to_have_count(7)
    await expect(page.locator(".movers tbody tr")).to_have_count(3)
    await expect(page.locator('svg.chart polyline[data-series="message"]')).to_have_count(1)
    await shoot_both(page, shoot, "dashboard-analytics-premium")

    await page.click(".seg.ranges >> text=30 days")
    await expect(charts.first.locator("rect.bar")).to_have_count(30)
    await page.click(".seg.ranges >> text=90 days")
    await expect(charts.first.locator("rect.bar")).to_have_count(90)
    await expect(page.locator(".seg.ranges a.active")).to_have_text("90 days")
    await shoot(page, "dashboard-analytics-premium-90")


async def test_the_owner_creates_an_api_key_sees_it_once_and_revokes_it(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage, shoot: Shoot
) -> None:
    company, exp = new_company(whop)
    owner = new_user()
    page = await as_whop_user(owner, community_id=exp, level="admin")

    await page.goto(f"/dashboard/{company}/{exp}/api-keys")
    await page.fill("input[name=name]", "")
    await page.uncheck('input[name=scopes][value="xp:read"]')
    await page.fill("input[name=name]", "Discord <bot>")
    await page.click("text=Create key")
    await expect(page.locator(".field-error")).to_have_text("choose at least one scope")
    await expect(page.locator("input[name=name]")).to_have_value("Discord <bot>")
    await shoot(page, "dashboard-api-keys-refused")

    await page.check('input[name=scopes][value="activities:write"]')
    await page.click("text=Create key")
    secret = await page.locator(".created-key .secret").inner_text()
    assert secret.startswith("wee5_")
    await expect(page.locator("table.keys tbody tr")).to_have_count(1)
    await expect(page.locator("table.keys td").first).to_have_text("Discord <bot>")
    await shoot_both(page, shoot, "dashboard-api-keys-created")

    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        body = {"kind": "message", "user_id": "user_bot", "idempotency_key": uuid.uuid4().hex}
        url = f"/api/v1/communities/{exp}/activities"
        works = await http.post(url, json=body, headers={"Authorization": f"Bearer {secret}"})
        assert works.status_code == 200, works.text

        await page.goto(f"/dashboard/{company}/{exp}/api-keys")
        await expect(page.locator(".created-key")).to_have_count(0)
        await page.click("table.keys >> text=Revoke")
        await expect(page.locator("table.keys tr.revoked")).to_have_count(1)
        await expect(page.locator(".notice")).to_contain_text("revoked")
        refused = await http.post(url, json=body, headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 401
    await shoot(page, "dashboard-api-keys-revoked")

    await page.goto(f"/dashboard/{company}/{exp}/audit")
    await expect(page.locator("table.audit tbody tr")).to_have_count(2)
    await expect(page.locator("table.audit tbody tr").first).to_have_attribute(
        "data-action", "api_key.revoked"
    )


async def test_an_admin_who_is_not_the_owner_sees_no_owner_pages(
    web_stack: Stack, whop: FakeWhop, as_whop_user: OpenPage
) -> None:
    company, exp = new_company(whop)
    owner, admin = new_user(), new_user()
    first = await as_whop_user(owner, community_id=exp, level="admin")
    await first.goto(f"/dashboard/{company}/{exp}")  # the first admin to arrive owns it
    page = await as_whop_user(admin, community_id=exp, level="admin")

    await page.goto(f"/dashboard/{company}/{exp}")
    await expect(page.locator(".topbar .tabs a")).to_have_count(8)
    billing = await page.goto(f"/dashboard/{company}/{exp}/billing")
    assert billing is not None
    assert billing.status == 403
    await expect(page.locator(".error")).to_contain_text("owner")


async def test_outside_whop_an_owner_signs_in_and_reaches_the_same_dashboard_under_app(
    web_stack: Stack, anonymous: OpenPage, shoot: Shoot
) -> None:
    community = f"exp_{uuid.uuid4().hex[:14]}"
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        registered = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "correct horse battery", "display_name": "Olga"},
        )
        assert registered.status_code == 201, registered.text
        account_id = registered.json()["account"]["id"]
        granted = await http.put(
            f"/api/v1/communities/{community}/roles/{account_id}",
            json={"role": "owner"},
            headers=bearer(GatewaySettings(), platform_admin=True),
        )
        assert granted.status_code == 200, granted.text
    page = await anonymous()

    await page.goto(f"/app/dashboard/{community}/audit")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/app/dashboard/{community}/audit")
    await expect(page.locator('tr[data-action="role.changed"]')).to_have_count(1)

    await page.click(".topbar .tabs >> text=Overview")
    await page.wait_for_url(f"**/app/dashboard/{community}")
    await expect(stat(page, "members")).to_have_text("0")
    await expect(page.locator(".topbar .tabs a").last).to_have_attribute(
        "href", f"/app/dashboard/{community}/audit"
    )
    await shoot(page, "dashboard-app-overview")
