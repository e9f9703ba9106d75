"""The API docs in a real browser, offline: Swagger UI (/schema) and Redoc (/schema/redoc)
draw the document from vendored assets, ask no other origin for anything, and break no rule
of their Content-Security-Policy."""

from __future__ import annotations

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, expect

from tests.support.stack import Stack
from tests.web.conftest import OpenPage, Shoot

pytestmark = pytest.mark.e2e


async def _open_offline(anonymous: OpenPage, base_url: str, path: str) -> tuple[Page, list[str]]:
    """The page at `path` with every request to another origin refused and recorded, along
    with the console's errors (a CSP violation is one)."""
    page = await anonymous()
    problems: list[str] = []

    async def only_here(route: object, request: Request) -> None:
        if request.url.startswith(base_url):
            await route.continue_()  # type: ignore[attr-defined]
        else:
            problems.append(f"request to {request.url}")
            await route.abort()  # type: ignore[attr-defined]

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    await page.route("**/*", only_here)
    page.on("console", on_console)
    answer = await page.goto(path)
    assert answer is not None
    assert answer.status == 200
    return page, problems


async def test_swagger_ui_draws_the_document_offline(
    web_stack: Stack, anonymous: OpenPage, shoot: Shoot
) -> None:
    page, problems = await _open_offline(anonymous, web_stack.base_url, "/schema")

    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("WEE5 API")
    await expect(page.locator(".opblock-summary-path", has_text="/xp-config").first).to_be_visible()
    await shoot(page, "api-docs-swagger")
    assert problems == []


async def test_redoc_draws_the_document_offline(
    web_stack: Stack, anonymous: OpenPage, shoot: Shoot
) -> None:
    page, problems = await _open_offline(anonymous, web_stack.base_url, "/schema/redoc")

    await expect(page.get_by_role("heading", name="WEE5 API").first).to_be_visible(timeout=15_000)
    await expect(page.get_by_text("Problem types").first).to_be_attached()
    await shoot(page, "api-docs-redoc")
    assert problems == []
