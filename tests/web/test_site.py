"""What every page shares: the email sign-in outside Whop, the security headers of the Whop
views and of /app, and the refusal of forms posted from other sites."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.stack import Stack
from tests.web.conftest import OpenPage, Shoot

pytestmark = pytest.mark.e2e


async def register(stack: Stack, email: str, password: str, name: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "display_name": name},
        )
        assert answer.status_code == 201, answer.text


async def test_signing_in_outside_whop_leads_back_to_the_page_asked_for(
    web_stack: Stack, anonymous: OpenPage, shoot: Shoot
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await register(web_stack, email, "correct horse battery", "Ada")
    page = await anonymous()

    await page.goto("/app/")
    assert page.url.endswith("/app/sign-in?next=%2Fapp")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "wrong password!")
    await page.click("button[type=submit]")
    assert await page.locator(".field-error").inner_text() == "the email or password is wrong"
    assert await page.input_value("input[name=email]") == email
    await shoot(page, "sign-in-refused")

    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app")
    assert await page.locator("h1").inner_text() == "Your communities"
    assert "Ada" in await page.locator(".who").inner_text()
    await shoot(page, "app-home")

    stolen = await page.context.cookies()
    await page.click("text=Sign out")
    await page.wait_for_url("**/app/sign-in")
    await page.goto("/app/")
    assert "/app/sign-in" in page.url

    # The session is over, not only forgotten by this browser: its refresh token is revoked.
    refresh = next(cookie["value"] for cookie in stolen if cookie["name"] == "wee5_refresh")
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        answer = await http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert answer.status_code == 401


async def test_a_sign_in_never_sends_the_browser_to_another_site(
    web_stack: Stack, anonymous: OpenPage
) -> None:
    email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    await register(web_stack, email, "correct horse battery", "Bob")
    page = await anonymous()
    await page.goto("/app/sign-in?next=https%3A%2F%2Fevil.example%2F")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app/")


async def test_whop_views_may_be_framed_by_whop_only_and_app_views_by_nobody(
    web_stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        whop_view = await http.get("/experiences/exp_framecheck")
        app_view = await http.get("/app/sign-in")
        api = await http.get("/healthz")
    csp = whop_view.headers["content-security-policy"]
    assert "frame-ancestors https://whop.com https://*.whop.com" in csp
    assert "default-src 'self'" in csp
    assert "script-src" not in csp
    assert "x-frame-options" not in whop_view.headers
    assert "frame-ancestors 'none'" in app_view.headers["content-security-policy"]
    assert app_view.headers["x-frame-options"] == "DENY"
    assert api.headers["x-frame-options"] == "DENY"


async def test_a_form_posted_from_another_site_is_refused(web_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=web_stack.base_url, timeout=10) as http:
        cross_site = await http.post(
            "/app/sign-in",
            data={"email": "x@example.com", "password": "whatever"},
            headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        )
        no_origin = await http.post(
            "/app/sign-in", data={"email": "x@example.com", "password": "whatever"}
        )
        same_origin = await http.post(
            "/app/sign-in",
            data={"email": "x@example.com", "password": "whatever"},
            headers={"origin": web_stack.base_url},
        )
    assert cross_site.status_code == 403
    assert "another site" in cross_site.text
    assert cross_site.headers["content-type"].startswith("text/html")
    assert no_origin.status_code == 403
    assert same_origin.status_code == 401  # reached the sign-in: wrong credentials
