"""The rank card as a PNG through the gateway, against a real xp server, Postgres and Redis:
who may see it (as the JSON card, and anyone on a public board), its ETag and 304, names that
try to break it, and the avatar: drawn when a local HTTP server serves one, initials when it
fails."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Response, get
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_webhooks as webhooks
from tests.gateway.test_member_profiles import message_from
from tests.gateway.test_webhooks import assert_problem, deliver
from tests.support.gateway import SECRET, bearer, gateway_settings, new_account, serve
from tests.support.whop import new_id
from tests.support.whop_api import serving
from wee5_gateway.api.xp.boards import SHARED_READ_SECONDS
from wee5_gateway.app import create_app
from wee5_gateway.config import GatewaySettings
from wee5_gateway.web import card_fonts
from wee5_gateway.web.card_fonts import FontsMissing
from wee5_gateway.web.rank_card import (
    AVATAR_BOX,
    AVATAR_SIZE,
    FONTS,
    HEIGHT,
    WIDTH,
    colour_of,
    fit,
    load_font,
)

Client = httpx.AsyncClient
Sessions = async_sessionmaker[AsyncSession]
xp_addr = webhooks.xp_addr
AVATAR_COLOUR = (200, 40, 90)
# Inside the avatar circle, left of the centre, clear of the initials drawn there.
AVATAR_POINT = (AVATAR_BOX[0] + 25, AVATAR_BOX[1] + AVATAR_SIZE // 2)


def _encoded(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format)
    return out.getvalue()


@get("/avatar.png", media_type="image/png")
async def avatar_png() -> bytes:
    return _encoded(Image.new("RGB", (64, 64), AVATAR_COLOUR), "PNG")


@get("/avatar.jpg", media_type="image/jpeg")
async def avatar_jpeg() -> bytes:
    return _encoded(Image.new("RGB", (800, 600), AVATAR_COLOUR), "JPEG")


@get("/too-big.png", media_type="image/png")
async def too_big() -> bytes:
    return os.urandom(3 * 1024 * 1024)


@get("/too-many-pixels.png", media_type="image/png")
async def too_many_pixels() -> bytes:
    """A few kilobytes claiming 5000x5000 pixels: more than the gateway decodes."""
    return _encoded(Image.new("1", (5000, 5000)), "PNG")


@get("/broken.png", media_type="image/png")
async def broken_png() -> Response[bytes]:
    return Response(b"", status_code=500)


@get("/not-an-image.png", media_type="image/png")
async def not_an_image() -> bytes:
    return b"<html>this is not a picture</html>"


@pytest.fixture(scope="module")
async def avatars() -> AsyncIterator[str]:
    """A local HTTP server: real avatars, and ones that fail, are no image or are too big."""
    app = Litestar([avatar_png, avatar_jpeg, broken_png, not_an_image, too_big, too_many_pixels])
    async with serving(app, "") as base:
        yield base


@pytest.fixture
def settings(xp_addr: str) -> GatewaySettings:
    return gateway_settings(xp_addr, whop_webhook_secret=SECRET)


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def reader(settings: GatewaySettings, sessionmaker: Sessions, community_id: str) -> Any:
    """A member of the community (linked to a member id of their own)."""
    account = await new_account(sessionmaker, community_id, "member", member_user_id=new_id("user"))
    return bearer(settings, account)


async def joined(gateway: Client, community_id: str, user: dict[str, Any]) -> str:
    """A member who wrote one message with the given `user` object (name, avatar…)."""
    user_id = new_id("user")
    delivered = await deliver(gateway, message_from(community_id, user_id, user))
    assert delivered.is_success, delivered.text
    return user_id


def card_path(community_id: str, user_id: str) -> str:
    return f"/api/v1/communities/{community_id}/members/{user_id}/card.png"


def picture(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)
    return image.convert("RGB")


async def make_public(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))
    changed = await gateway.put(
        f"/api/v1/communities/{community_id}/leaderboard-settings",
        json={"visibility": "public"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text


async def test_a_member_gets_a_png_card_with_an_etag_and_a_matching_etag_is_304(
    gateway: Client, reader: dict[str, str], community_id: str, tmp_path: Path
) -> None:
    ada = await joined(gateway, community_id, {"name": "Ada Lovelace", "username": "ada"})

    response = await gateway.get(card_path(community_id, ada), headers=reader)

    picture(response)
    (tmp_path / "rank-card.png").write_bytes(response.content)
    shutil.copy(tmp_path / "rank-card.png", "/tmp/rank-card.png")
    assert response.headers["cache-control"] == "private, max-age=60"
    etag = response.headers["etag"]
    again = await gateway.get(
        card_path(community_id, ada), headers={**reader, "if-none-match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # More XP changes the picture, so the old ETag no longer matches (once the second in
    # which readers share one card has passed).
    await deliver(gateway, message_from(community_id, ada, {}))
    await asyncio.sleep(SHARED_READ_SECONDS)
    changed = await gateway.get(
        card_path(community_id, ada), headers={**reader, "if-none-match": etag}
    )
    picture(changed)
    assert changed.headers["etag"] != etag


async def test_without_credentials_a_members_only_boards_card_is_401(
    gateway: Client, community_id: str
) -> None:
    ada = await joined(gateway, community_id, {"name": "Ada"})

    assert_problem(await gateway.get(card_path(community_id, ada)), 401)


async def test_a_public_boards_card_is_served_anonymously_and_publicly_cacheable(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    ada = await joined(gateway, community_id, {"name": "Ada"})
    await make_public(gateway, settings, sessionmaker, community_id)

    response = await gateway.get(card_path(community_id, ada))

    picture(response)
    assert response.headers["cache-control"] == "public, max-age=60"


async def test_a_hidden_members_card_is_404_to_others_and_drawn_privately_for_themselves(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    reader: dict[str, str],
    community_id: str,
) -> None:
    hidden = await joined(gateway, community_id, {"name": "Hidden"})
    as_hidden = bearer(
        settings, await new_account(sessionmaker, community_id, "member", member_user_id=hidden)
    )
    await make_public(gateway, settings, sessionmaker, community_id)
    hid = await gateway.put(
        f"/api/v1/communities/{community_id}/members/me/privacy",
        json={"hidden_from_leaderboards": True},
        headers=as_hidden,
    )
    assert hid.status_code == 200, hid.text

    assert_problem(await gateway.get(card_path(community_id, hidden), headers=reader), 404)
    assert_problem(await gateway.get(card_path(community_id, hidden)), 404)
    own = await gateway.get(card_path(community_id, hidden), headers=as_hidden)
    picture(own)
    # The same URL is a 404 to others: no shared cache may keep the hidden member's card.
    assert own.headers["cache-control"] == "private, max-age=60"


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "W" * 300,
        "محمد بن موسى الخوارزمي",
        "李小龍 ブルース・リー",
        "\u202eevil\u202c name\x07",
    ],
    ids=["markup", "300 chars", "arabic", "cjk", "bidi override and controls"],
)
async def test_hostile_long_and_non_latin_names_are_drawn(
    gateway: Client, reader: dict[str, str], community_id: str, name: str
) -> None:
    member = await joined(gateway, community_id, {"name": name, "username": "x"})

    picture(await gateway.get(card_path(community_id, member), headers=reader))


def test_a_long_name_is_cut_with_an_ellipsis_to_the_width_it_is_given() -> None:
    for name in ("W" * 300, "محمد بن موسى الخوارزمي " * 20, "李" * 200):
        cut = fit(name, FONTS.name, 400)
        assert cut.endswith("…")
        assert FONTS.name.getlength(cut) <= 400
    assert fit("Ada", FONTS.name, 400) == "Ada"


@pytest.mark.parametrize(
    "path",
    ["/broken.png", "/not-an-image.png", "/nowhere.png", "/too-big.png", "/too-many-pixels.png"],
)
async def test_an_avatar_that_cannot_be_had_gives_initials_on_the_members_colour(
    gateway: Client, reader: dict[str, str], community_id: str, avatars: str, path: str
) -> None:
    # A fresh query string each time: the gateway remembers a failed avatar for a minute.
    url = f"{avatars}{path}?v={new_id('v')}"
    member = await joined(
        gateway, community_id, {"name": "Grace Hopper", "profile_picture": {"url": url}}
    )

    image = picture(await gateway.get(card_path(community_id, member), headers=reader))

    assert image.getpixel(AVATAR_POINT) == colour_of(member)


@pytest.mark.parametrize("path", ["/avatar.png", "/avatar.jpg"])
async def test_a_served_avatar_is_drawn_in_the_circle(
    gateway: Client,
    reader: dict[str, str],
    community_id: str,
    avatars: str,
    tmp_path: Path,
    path: str,
) -> None:
    url = f"{avatars}{path}?v={new_id('v')}"
    member = await joined(
        gateway, community_id, {"name": "Grace Hopper", "profile_picture": {"url": url}}
    )

    response = await gateway.get(card_path(community_id, member), headers=reader)

    image = picture(response)
    (tmp_path / "rank-card-avatar.png").write_bytes(response.content)
    drawn = image.getpixel(AVATAR_POINT)
    assert isinstance(drawn, tuple)
    # JPEG is lossy: its colour comes back within a few levels.
    assert all(abs(a - b) <= 4 for a, b in zip(drawn, AVATAR_COLOUR, strict=True)), drawn


def test_a_missing_font_is_a_clear_error_naming_the_package() -> None:
    with pytest.raises(FontsMissing, match="install Debian's fonts-dejavu-core"):
        load_font("DejaVuSans-NoSuchWeight.ttf", 12)


def test_without_the_fonts_the_gateway_does_not_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(card_fonts, "FONT_DIR", tmp_path)
    with pytest.raises(FontsMissing, match="install Debian's fonts-dejavu-core"):
        create_app(GatewaySettings(jwt_secret="x" * 40))
