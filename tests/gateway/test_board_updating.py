"""While xp rebuilds a board Redis lost, the gateway answers its pages and rank cards (from
xp's Postgres fallback) with `updating: true`, documented in the OpenAPI schema, and the
board and card pages say "Updating…"; once the rebuilt board is swapped in, `updating` is
false. The rebuild is held before its first chunk until the test lets it go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_tiers as tiers
from tests.gateway.test_tiers import admin_headers
from tests.gateway.test_xp_routes import base, message
from tests.support.faults import eventually
from wee5_gateway.api.xp.schemas import Leaderboard, MemberCard
from wee5_gateway.config import GatewaySettings
from wee5_gateway.web.experience import BoardView, CardView, Row
from wee5_gateway.web.site import template_config
from wee5_xp.leaderboards import Score
from wee5_xp.repository import XpRepository

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

xp_addr, billing_addr, settings, gateway, xp = (
    tiers.xp_addr,
    tiers.billing_addr,
    tiers.settings,
    tiers.gateway,
    tiers.xp,
)


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Holds every all-time board rebuild (of the xp server in this process) until set."""
    go_on = asyncio.Event()
    scores = XpRepository.all_time_scores

    async def held(self: XpRepository, community_id: str) -> AsyncIterator[list[Score]]:
        await go_on.wait()
        async for chunk in scores(self, community_id):
            yield chunk

    monkeypatch.setattr(XpRepository, "all_time_scores", held)
    return go_on


def render(template: str, **context: Any) -> str:
    engine = template_config().instance
    assert engine is not None
    return str(engine.engine.get_template(template).render(**context))


def board_page(board: Leaderboard) -> str:
    rows = [Row.of(entry, None) for entry in board.entries]
    view = BoardView(
        "/b", "all", None, "", board, rows, None, [], None, "", None, None, None, None, None
    )
    return render("experience/_board.html", view=view)


def card_page(card: MemberCard) -> str:
    view = CardView(card, card.user_id, "U", None, 0.0, "/card.png")
    return render("experience/_card.html", me=view)


async def test_a_board_being_rebuilt_is_served_marked_updating_until_it_is_swapped_in(
    gateway: httpx.AsyncClient,
    settings: GatewaySettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    xp: XpServiceAsyncStub,
    community_id: str,
    release: asyncio.Event,
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await message(xp, community_id, "user_a")
    await message(xp, community_id, "user_b")
    await message(xp, community_id, "user_b")
    leaderboard = f"{base(community_id)}/leaderboard"

    during = await gateway.get(leaderboard, headers=headers)
    card = await gateway.get(f"{base(community_id)}/members/user_a", headers=headers)

    assert during.status_code == 200, during.text
    assert during.json()["updating"] is True
    assert [(e["rank"], e["user_id"]) for e in during.json()["entries"]] == [
        (1, "user_b"),
        (2, "user_a"),
    ]
    assert card.status_code == 200, card.text
    assert card.json()["updating"] is True
    assert card.json()["rank"] == 2
    assert "Updating…" in board_page(msgspec.convert(during.json(), Leaderboard))
    assert "Updating…" in card_page(msgspec.convert(card.json(), MemberCard))

    release.set()

    async def swapped_in() -> bool:
        reply = await gateway.get(leaderboard, headers=headers)
        return reply.json()["updating"] is False

    await eventually(swapped_in, within=30)
    after = await gateway.get(leaderboard, headers=headers)
    assert after.json()["entries"] == during.json()["entries"]
    assert "Updating…" not in board_page(msgspec.convert(after.json(), Leaderboard))


async def test_the_openapi_schema_documents_the_updating_marker(
    gateway: httpx.AsyncClient,
) -> None:
    schemas = (await gateway.get("/schema/openapi.json")).json()["components"]["schemas"]
    for name in ("Leaderboard", "MemberCard"):
        updating = schemas[name]["properties"]["updating"]
        assert updating["type"] == "boolean"
        assert "rebuilt" in updating["description"]
