"""The gateway app in-process for tests: settings pointing at the tests' services, the app with
its lifespan run, an HTTP client on it, and credentials minted the way the gateway mints them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx import AsyncClient as Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.conftest import PLATFORM_ADMIN_ID, free_port
from wee5_gateway.api.webhooks.intake import whop_intake
from wee5_gateway.api.webhooks.receipts import WebhookReceipts
from wee5_gateway.app import create_app
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access_cache import AccessCache
from wee5_gateway.core.security import AccessTokens
from wee5_gateway.db.models import CommunityRole, User

SECRET = "ws_" + "ab" * 32
UNLIMITED = "1000000/minute"
RATE_LIMITED_CLASSES = (
    "auth",
    "webhook_bad_signature",
    "public_read",
    "read",
    "write",
    "activities",
    "login_failures_per_email",
    "register_per_email",
    "refresh_per_account",
)


def gateway_settings(xp_addr: str, **overrides: Any) -> GatewaySettings:
    nowhere = {
        f"{name}_addr": f"127.0.0.1:{free_port()}"
        for name in ("rewards", "benchmarks", "resources", "billing")
    }
    # Every test calls from 127.0.0.1 and the run shares one Redis prefix: limits out of
    # reach, unless a test sets its own (tests/gateway/test_protection.py).
    unlimited = {f"rate_limit_{kind}": UNLIMITED for kind in RATE_LIMITED_CLASSES}
    return GatewaySettings(
        **{
            "xp_addr": xp_addr,
            "whop_webhook_secret": SECRET,
            **nowhere,
            **unlimited,
            **overrides,
        }
    )


def bearer(
    settings: GatewaySettings, account_id: uuid.UUID | None = None, *, platform_admin: bool = False
) -> dict[str, str]:
    """An Authorization header with an access token as the gateway itself issues them."""
    assert settings.jwt_secret is not None, "tests run with WEE5_JWT_SECRET set"
    tokens = AccessTokens(settings.jwt_secret.get_secret_value(), timedelta(minutes=15))
    default = PLATFORM_ADMIN_ID if platform_admin else uuid.uuid4()
    token, _ = tokens.issue(account_id or default, is_platform_admin=platform_admin)
    return {"Authorization": f"Bearer {token}"}


async def new_account(
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str | None = None,
    role: str | None = None,
    *,
    member_user_id: str | None = None,
) -> uuid.UUID:
    """An account (with a role in `community_id` when given), written straight to the
    gateway schema; for tests of what a role may do, not of how accounts are made."""
    account_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(User(id=account_id, email=f"{account_id.hex}@example.test", password_hash="!"))
        await session.flush()
        if community_id and role:
            session.add(
                CommunityRole(
                    community_id=community_id,
                    account_id=account_id,
                    role=role,
                    member_user_id=member_user_id,
                )
            )
    return account_id


@asynccontextmanager
async def serve(
    settings: GatewaySettings,
    headers: dict[str, str] | None = None,
    *,
    peer: tuple[str, int] = ("127.0.0.1", 123),
) -> AsyncIterator[Client]:
    """The gateway app with its startup/shutdown run, and an HTTP client talking to it from
    `peer` (this machine unless said otherwise)."""
    app = create_app(settings)
    started, stopping = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        # Entered and left in one task: Litestar's lifespan holds an anyio cancel scope, and a
        # fixture's setup and teardown run in different tasks.
        async with app.lifespan():
            started.set()
            await stopping.wait()

    running = asyncio.create_task(lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if not started.is_set():
        await running  # startup failed: raise its error here
    try:
        async with Client(
            transport=httpx.ASGITransport(app=app, client=peer),  # type: ignore[arg-type]  # Litestar types ASGI narrower
            base_url="http://gateway",
            headers=headers,
        ) as client:
            yield client
    finally:
        stopping.set()
        await running


def receipts_of(client: Client) -> WebhookReceipts:
    """The webhook receipts of the app `serve` runs behind `client`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return whop_intake(transport.app.state).receipts  # type: ignore[attr-defined]


async def flush_receipts(client: Client) -> None:
    """Waits until the receipts the app wrote behind its answers are in Postgres."""
    await receipts_of(client).flush()


@asynccontextmanager
async def receipts_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """While inside, the receipts written behind webhook answers wait to be inserted (an
    EXCLUSIVE lock on the table lets reads through, not writes)."""
    async with engine.connect() as connection, connection.begin():
        await connection.execute(text("LOCK TABLE gateway.webhook_receipts IN EXCLUSIVE MODE"))
        yield


def late_access_announcements(monkeypatch: pytest.MonkeyPatch, seconds: float = 3.0) -> None:
    """Postgres's announcements of role and key changes reach the gateway `seconds` late (as
    on a busy replica), so a test sees what the process that made a change knows without
    them."""
    announced = AccessCache.announced

    def late(cache: AccessCache, payload: str) -> None:
        asyncio.get_running_loop().call_later(seconds, announced, cache, payload)

    monkeypatch.setattr(AccessCache, "announced", late)
