"""The pages in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser) against the whole platform started as `make up` starts it, with Whop sign-in on
(Whop's API, JWKS and tokens from the local stand-in) and Stripe's stand-in for checkout.

One stack serves every page test of the session; tests keep apart by using their own
community ids. `shoot(page, name)` keeps a screenshot of what a test saw under its
temporary folder (the path is printed, so a run's artifacts can be looked at).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from tests.support.stack import Stack, start_stack, stop_stack
from tests.support.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, StripeServer
from tests.support.whop_api import FakeWhop, serving
from tests.support.whop_tokens import APP_ID, WhopSigningKey

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, without the background services a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COMPANY = "biz_pages"


@pytest.fixture(scope="session")
def whop_key() -> WhopSigningKey:
    return WhopSigningKey()


@pytest.fixture(scope="session")
async def whop(whop_key: WhopSigningKey) -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    fake.jwks = {"keys": [whop_key.jwk()]}
    async with serving(fake, "") as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture(scope="session")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


@pytest.fixture(scope="session")
def web_stack(
    database_url: str,
    test_env: dict[str, str],
    whop: FakeWhop,
    stripe: FakeStripe,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = start_stack(
        test_env,
        tmp_path_factory.mktemp("web"),
        WEE5_WHOP_APP_ID=APP_ID,
        # Pages show what the step before wrote: no second of shared board answers here.
        WEE5_SHARED_READ_SECONDS="0",
        WEE5_WHOP_JWKS_URL=f"{whop.base_url}/.well-known/jwks.json",
        WEE5_WHOP_API_URL=f"{whop.base_url}/api/v1",
        WEE5_WHOP_API_KEY=whop.api_key,
        WEE5_STRIPE_SECRET_KEY=API_KEY,
        WEE5_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEE5_STRIPE_API_BASE=stripe.base_url,
        WEE5_STRIPE_PRICE_PREMIUM_MONTHLY="price_premium_monthly",
        WEE5_STRIPE_PRICE_PREMIUM_YEARLY="price_premium_yearly",
        # The pages are served over http here; the sign-in cookie must still be sent back.
        WEE5_COOKIE_SECURE="false",
    )
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
def as_whop_user(
    web_stack: Stack,
    whop: FakeWhop,
    whop_key: WhopSigningKey,
    browser: Browser,
    contexts: list[BrowserContext],
) -> OpenPage:
    """A browser tab as Whop's iframe shows the app to `user_id`: Whop's proxy adds the
    user's token to every request to our origin (pages, htmx calls, the live stream)."""

    async def open_page(
        user_id: str, *, community_id: str | None = None, level: str = "customer"
    ) -> Page:
        if community_id is not None:
            whop.access_levels[(user_id, community_id)] = level
        context = await browser.new_context(
            base_url=web_stack.base_url, viewport={"width": 1100, "height": 900}
        )
        contexts.append(context)
        token = whop_key.token(user_id, expires_in=3600)

        # Only to our origin, as Whop's proxy does: a header the browser added itself would
        # turn a page's cross-origin requests (uploads to storage) into preflighted ones.
        async def add_token(route: Route) -> None:
            await route.continue_(headers={**route.request.headers, "x-whop-user-token": token})

        await context.route(f"{web_stack.base_url}/**", add_token)
        return await context.new_page()

    return open_page


@pytest.fixture
def anonymous(web_stack: Stack, browser: Browser, contexts: list[BrowserContext]) -> OpenPage:
    async def open_page(*, width: int = 1100) -> Page:
        context = await browser.new_context(
            base_url=web_stack.base_url, viewport={"width": width, "height": 900}
        )
        contexts.append(context)
        return await context.new_page()

    return open_page


Shoot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture
def shoot(tmp_path: Path) -> Shoot:
    """Saves a full-page screenshot as `<tmp_path>/screenshots/<name>.png` and prints where."""

    async def save(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    return save


def new_user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def new_experience(whop: FakeWhop, name: str = "Trading Floor") -> str:
    return whop.add_experience(COMPANY, name)
