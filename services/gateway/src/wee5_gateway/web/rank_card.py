"""The rank card as a PNG (GET /communities/{id}/members/{user_id}/card.png), drawn with Pillow:
a 934x282 dark card with the member's avatar, name, rank, level, progress to the next level
and up to six badges.

Everything that does not change between members (fonts, the card's background, the circle
masks) is made once, at import, which is the first card the gateway draws (the routes import
this module then; web/card_fonts.py checks the fonts at startup). The
avatar is fetched over HTTP(S) with a short deadline and a size cap, decoded by Pillow in a
thread and kept in a small in-process cache; when it cannot be had, the card shows the
member's initials on a colour of their own. A card's ETag is a hash of everything it shows,
so the picture is drawn only when one of those changed.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import httpx
from litestar.datastructures import State
from PIL import Image, ImageDraw, ImageFont, ImageOps

from wee5_gateway.core.cache import TtlCache
from wee5_gateway.web.card_fonts import FontsMissing, font_path
from wee5_kit.logging import get_logger

if TYPE_CHECKING:  # api.xp imports this module for its route
    from wee5_gateway.api.xp.schemas import MemberCard

log = get_logger("wee5.gateway.rank_card")

# Bump when the drawing changes, so clients holding an old ETag get the new picture.
RENDER_VERSION: Final = "1"
WIDTH, HEIGHT = 934, 282
MAX_BADGES = 6

AVATAR_TIMEOUT_SECONDS = 2.0
MAX_AVATAR_BYTES = 2 * 1024 * 1024
# A 2 MB file may still claim a huge canvas (a decompression bomb): refused before decoding.
MAX_AVATAR_PIXELS = 4096 * 4096
AVATAR_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
AVATAR_CACHE_SECONDS = 600.0
AVATAR_FAILURE_CACHE_SECONDS = 60.0
MAX_CACHED_AVATARS = 256
# Rendered cards by ETag: the same card asked again within a minute is not drawn again.
PNG_CACHE_SECONDS = 60.0
MAX_CACHED_PNGS = 512
# Cards drawn at once: Pillow lets go of the GIL only while it compresses, so more threads
# than this fight the event loop for the GIL (bench/rank_card.py measures it).
RENDER_THREADS = 2
# A name longer than this is cut before it is measured (it is cut to the card's width anyway).
MAX_NAME_CHARS = 128

BACKGROUND = (35, 39, 42, 255)
PANEL = (24, 26, 29, 255)
TEXT = (255, 255, 255)
MUTED = (163, 166, 170)
ACCENT = (98, 211, 245)
TRACK = (72, 75, 78)
RING = (24, 26, 29)

# Layout (pixels on the 934x282 card).
MARGIN = 20
AVATAR_SIZE = 180
AVATAR_BOX = (48, (HEIGHT - AVATAR_SIZE) // 2)
RING_WIDTH = 6
CONTENT_LEFT = 270
CONTENT_RIGHT = WIDTH - 44
TOP_BASELINE = 92
NAME_BASELINE = 150
BAR_TOP, BAR_HEIGHT = 166, 32
BADGE_SIZE = 30
BADGE_GAP = 8
BADGE_TOP = 212
# Shapes are drawn this many times larger and scaled down: smooth edges.
SUPERSAMPLE = 4

# Bidirectional controls would let a name reorder the text drawn after it.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_WORD = re.compile(r"\w+")


def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_path(name)
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)
    except OSError:
        raise FontsMissing(f"{path} is not a font Pillow can load") from None


@dataclass(frozen=True)
class _Fonts:
    name: ImageFont.FreeTypeFont
    label: ImageFont.FreeTypeFont
    figure: ImageFont.FreeTypeFont
    xp: ImageFont.FreeTypeFont
    initials: ImageFont.FreeTypeFont
    badge: ImageFont.FreeTypeFont


def _load_fonts() -> _Fonts:
    return _Fonts(
        name=load_font("DejaVuSans-Bold.ttf", 38),
        label=load_font("DejaVuSans.ttf", 24),
        figure=load_font("DejaVuSans-Bold.ttf", 54),
        xp=load_font("DejaVuSans.ttf", 26),
        initials=load_font("DejaVuSans-Bold.ttf", 72),
        badge=load_font("DejaVuSans-Bold.ttf", 16),
    )


def _circle_mask(diameter: int) -> Image.Image:
    big = Image.new("L", (diameter * SUPERSAMPLE,) * 2, 0)
    ImageDraw.Draw(big).ellipse((0, 0, big.width - 1, big.height - 1), fill=255)
    return big.resize((diameter, diameter), Image.Resampling.LANCZOS)


def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    big = Image.new("L", (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, big.width - 1, big.height - 1), radius=radius * SUPERSAMPLE, fill=255
    )
    return big.resize(size, Image.Resampling.LANCZOS)


def _base() -> Image.Image:
    """The card without a member: rounded background, inner panel, the avatar's ring."""
    card = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    card.paste(BACKGROUND, (0, 0), _rounded_mask((WIDTH, HEIGHT), 28))
    panel = (WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN)
    card.paste(PANEL, (MARGIN, MARGIN), _rounded_mask(panel, 20))
    ring = AVATAR_SIZE + 2 * RING_WIDTH
    x, y = AVATAR_BOX
    card.paste(MUTED, (x - RING_WIDTH, y - RING_WIDTH), _circle_mask(ring))
    return card


FONTS: Final = _load_fonts()
_BASE: Final = _base()
_AVATAR_MASK: Final = _circle_mask(AVATAR_SIZE)
_BADGE_MASK: Final = _circle_mask(BADGE_SIZE)
_BAR_CAP: Final = _circle_mask(BAR_HEIGHT)
_BAR_WIDTH: Final = CONTENT_RIGHT - CONTENT_LEFT
# What the font draws for a character it lacks (a private-use one no font here has).
_MISSING_GLYPH: Final = bytes(FONTS.initials.getmask("\U000f0000"))


@dataclass(frozen=True)
class Avatar:
    """A decoded avatar, square at the card's avatar size, and a digest of its source bytes."""

    image: Image.Image
    digest: str


@dataclass(frozen=True)
class Picture:
    """Everything the card shows, as it shows it: the ETag is a hash of this."""

    user_id: str
    name: str
    rank: int
    level: int
    xp_into_level: int
    xp_for_next_level: int
    progress: float
    badges: tuple[tuple[str, str], ...]  # (id, name), oldest award first
    avatar: Avatar | None

    @property
    def etag(self) -> str:
        parts = [
            RENDER_VERSION,
            self.user_id,
            self.name,
            str(self.rank),
            str(self.level),
            str(self.xp_into_level),
            str(self.xp_for_next_level),
            f"{self.progress:.3f}",
            *(f"{badge_id}:{name}" for badge_id, name in self.badges),
            self.avatar.digest if self.avatar else "",
        ]
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
        return f'"{digest}"'


def display_name(card: MemberCard) -> str:
    """How the card names the member: display name, else username, else user id; without
    control characters or bidirectional overrides, at most `MAX_NAME_CHARS` long."""
    for candidate in (card.display_name, card.username, card.user_id):
        name = _clean(candidate or "")
        if name:
            return name[:MAX_NAME_CHARS]
    return "?"


def _clean(text: str) -> str:
    text = _BIDI_CONTROLS.sub("", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cc")
    return " ".join(text.split())


class RankCards:
    """The gateway's rank card images: avatars fetched and cached, cards drawn in a thread and
    kept briefly by ETag. One per app (`provide_rank_cards`)."""

    def __init__(self) -> None:
        self._avatars: TtlCache[str, Avatar] = TtlCache(
            AVATAR_CACHE_SECONDS, max_entries=MAX_CACHED_AVATARS
        )
        self._failed_avatars: TtlCache[str, bool] = TtlCache(
            AVATAR_FAILURE_CACHE_SECONDS, max_entries=MAX_CACHED_AVATARS * 4
        )
        self._pngs: TtlCache[str, bytes] = TtlCache(PNG_CACHE_SECONDS, max_entries=MAX_CACHED_PNGS)
        self._threads = anyio.CapacityLimiter(RENDER_THREADS)

    async def picture(self, card: MemberCard) -> Picture:
        """What the member's card shows, with their avatar when it can be had."""
        return Picture(
            user_id=card.user_id,
            name=display_name(card),
            rank=card.rank,
            level=card.level,
            xp_into_level=card.xp_into_level,
            xp_for_next_level=card.xp_for_next_level,
            progress=min(max(card.progress, 0.0), 1.0),
            badges=tuple((b.id, b.name) for b in card.badges[:MAX_BADGES]),
            avatar=await self.avatar(card.avatar_url) if card.avatar_url else None,
        )

    async def png(self, picture: Picture) -> bytes:
        """The card as PNG, drawn in one of `RENDER_THREADS` worker threads: the event loop
        keeps serving while cards are drawn."""
        etag = picture.etag
        cached = self._pngs.get(etag)
        if cached is not None:
            return cached
        generation = self._pngs.generation()
        png = await anyio.to_thread.run_sync(render, picture, limiter=self._threads)
        self._pngs.put(etag, png, generation)
        return png

    async def avatar(self, url: str) -> Avatar | None:
        """The avatar at `url`, or None when it cannot be fetched or decoded (remembered for
        a minute, so a broken URL is not asked on every view)."""
        cached = self._avatars.get(url)
        if cached is not None:
            return cached
        if self._failed_avatars.get(url):
            return None
        generation = self._avatars.generation()
        try:
            data = await fetch_avatar(url)
            image = await anyio.to_thread.run_sync(decode_avatar, data, limiter=self._threads)
        except AvatarUnavailable as error:
            log.info("rank card drawn with initials", reason=str(error))
            self._failed_avatars.put(url, True, self._failed_avatars.generation())
            return None
        avatar = Avatar(image, hashlib.sha256(data).hexdigest()[:16])
        self._avatars.put(url, avatar, generation)
        return avatar


class AvatarUnavailable(Exception):
    """The avatar could not be fetched or is not a picture Pillow will decode."""


async def fetch_avatar(url: str) -> bytes:
    """The avatar's bytes: http(s) only, within `AVATAR_TIMEOUT_SECONDS` in all, at most
    `MAX_AVATAR_BYTES`."""
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL as error:
        raise AvatarUnavailable(f"invalid avatar URL: {error}") from None
    if scheme not in ("http", "https"):
        raise AvatarUnavailable(f"avatar URL scheme {scheme!r} is not http(s)")
    try:
        async with (
            asyncio.timeout(AVATAR_TIMEOUT_SECONDS),
            httpx.AsyncClient(
                timeout=AVATAR_TIMEOUT_SECONDS, follow_redirects=True, max_redirects=3
            ) as client,
            client.stream("GET", url, headers={"accept": "image/*"}) as response,
        ):
            response.raise_for_status()
            if int(response.headers.get("content-length") or 0) > MAX_AVATAR_BYTES:
                raise AvatarUnavailable("avatar larger than 2 MB")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_AVATAR_BYTES:
                    raise AvatarUnavailable("avatar larger than 2 MB")
            return bytes(data)
    except (httpx.HTTPError, TimeoutError, ValueError) as error:
        raise AvatarUnavailable(f"avatar fetch failed: {type(error).__name__}") from None


def decode_avatar(data: bytes) -> Image.Image:
    """The picture in `data`, cropped square at the avatar's size, on the panel's colour
    where it is transparent. Only the formats of `AVATAR_FORMATS`, at most
    `MAX_AVATAR_PIXELS`; anything else is `AvatarUnavailable`."""
    try:
        with Image.open(io.BytesIO(data), formats=AVATAR_FORMATS) as source:
            if source.width * source.height > MAX_AVATAR_PIXELS:
                raise AvatarUnavailable(f"avatar of {source.width}x{source.height} pixels")
            source.draft("RGB", (AVATAR_SIZE * 2, AVATAR_SIZE * 2))  # JPEG: decode smaller
            square = ImageOps.fit(
                source.convert("RGBA"), (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS
            )
    except AvatarUnavailable:
        raise
    # Pillow reports a file it cannot decode in many ways (UnidentifiedImageError, OSError,
    # SyntaxError, DecompressionBombError, …); each means the same here.
    except Exception as error:
        raise AvatarUnavailable(f"avatar not decodable: {type(error).__name__}") from None
    flat = Image.new("RGBA", square.size, PANEL)
    flat.alpha_composite(square)
    return flat.convert("RGB")


def render(picture: Picture) -> bytes:
    """The card as PNG bytes (CPU work: call it in a thread from async code)."""
    card = _BASE.copy()
    draw = ImageDraw.Draw(card)
    _draw_avatar(card, draw, picture)
    _draw_standing(draw, picture)
    _draw_badges(card, draw, picture)
    xp_left = _draw_xp(draw, picture)
    name = fit(picture.name, FONTS.name, xp_left - CONTENT_LEFT - 24)
    draw.text((CONTENT_LEFT, NAME_BASELINE), name, font=FONTS.name, fill=TEXT, anchor="ls")
    _draw_bar(card, picture.progress)
    out = io.BytesIO()
    card.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def fit(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """`text`, or its longest start that fits `width` with an ellipsis, measured in `font`."""
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)  # text[:low] + "…" fits; text[:high] + "…" does not
    while high - low > 1:
        middle = (low + high) // 2
        if font.getlength(text[:middle].rstrip() + "…") <= width:
            low = middle
        else:
            high = middle
    return text[:low].rstrip() + "…"


def _draw_avatar(card: Image.Image, draw: ImageDraw.ImageDraw, picture: Picture) -> None:
    if picture.avatar is not None:
        card.paste(picture.avatar.image, AVATAR_BOX, _AVATAR_MASK)
        return
    card.paste(colour_of(picture.user_id), AVATAR_BOX, _AVATAR_MASK)
    centre = (AVATAR_BOX[0] + AVATAR_SIZE // 2, AVATAR_BOX[1] + AVATAR_SIZE // 2)
    letters = initials(picture.name, picture.user_id)
    draw.text(centre, letters, font=FONTS.initials, fill=TEXT, anchor="mm")


def _draw_standing(draw: ImageDraw.ImageDraw, picture: Picture) -> None:
    """The top line, right-aligned: RANK #n, LEVEL n."""
    pieces = [
        ("LEVEL", FONTS.label, ACCENT),
        (compact(picture.level), FONTS.figure, ACCENT),
    ]
    if picture.rank > 0:  # 0: not on the board, so no rank to show
        pieces[:0] = [
            ("RANK", FONTS.label, MUTED),
            (f"#{compact(picture.rank)}", FONTS.figure, TEXT),
        ]
    x = float(CONTENT_RIGHT)
    for n, (text, font, colour) in enumerate(reversed(pieces)):
        draw.text((x, TOP_BASELINE), text, font=font, fill=colour, anchor="rs")
        x -= font.getlength(text) + (28 if n == 1 else 10)


def _draw_badges(card: Image.Image, draw: ImageDraw.ImageDraw, picture: Picture) -> None:
    """The badges in a row under the bar, as circles with their name's initial."""
    x = CONTENT_LEFT
    for badge_id, name in picture.badges:
        card.paste(colour_of(badge_id), (x, BADGE_TOP), _BADGE_MASK)
        centre = (x + BADGE_SIZE // 2, BADGE_TOP + BADGE_SIZE // 2)
        letter = initials(name, badge_id)[:1]
        draw.text(centre, letter, font=FONTS.badge, fill=TEXT, anchor="mm")
        x += BADGE_SIZE + BADGE_GAP


def _draw_xp(draw: ImageDraw.ImageDraw, picture: Picture) -> int:
    """ "into / next XP" right-aligned above the bar; returns where it starts."""
    into = compact(picture.xp_into_level)
    rest = f" / {compact(picture.xp_for_next_level)} XP"
    draw.text((CONTENT_RIGHT, NAME_BASELINE), rest, font=FONTS.xp, fill=MUTED, anchor="rs")
    x = CONTENT_RIGHT - FONTS.xp.getlength(rest)
    draw.text((x, NAME_BASELINE), into, font=FONTS.xp, fill=TEXT, anchor="rs")
    return int(x - FONTS.xp.getlength(into))


def _draw_bar(card: Image.Image, progress: float) -> None:
    """The track and the filled part, both with round ends."""
    card.paste(TRACK, (CONTENT_LEFT, BAR_TOP), _pill(_BAR_WIDTH))
    if progress > 0:
        filled = max(BAR_HEIGHT, round(_BAR_WIDTH * progress))
        card.paste(ACCENT, (CONTENT_LEFT, BAR_TOP), _pill(filled))


def _pill(width: int) -> Image.Image:
    """A mask `width` x `BAR_HEIGHT` with round ends (width >= BAR_HEIGHT)."""
    mask = Image.new("L", (width, BAR_HEIGHT), 0)
    half = BAR_HEIGHT // 2
    mask.paste(_BAR_CAP.crop((0, 0, half, BAR_HEIGHT)), (0, 0))
    mask.paste(255, (half, 0, width - half, BAR_HEIGHT))
    mask.paste(_BAR_CAP.crop((half, 0, BAR_HEIGHT, BAR_HEIGHT)), (width - (BAR_HEIGHT - half), 0))
    return mask


def initials(name: str, fallback: str) -> str:
    """Up to two letters: the first of the name's first and last words that the font can
    draw (DejaVu has no CJK, for one), else of `fallback`'s."""
    words: list[str] = [w for w in _WORD.findall(name) if _has_glyph(w[0])]
    words = words or _WORD.findall(fallback.removeprefix("user_")) or ["?"]
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def _has_glyph(char: str) -> bool:
    """Whether DejaVu draws `char` as itself rather than its missing-glyph box."""
    return bytes(FONTS.initials.getmask(char)) != _MISSING_GLYPH


def colour_of(key: str) -> tuple[int, int, int]:
    """A colour of the key's own, the same every time: a hue from its hash."""
    hue = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") / 65536
    red, green, blue = colorsys.hls_to_rgb(hue, 0.45, 0.55)
    return round(red * 255), round(green * 255), round(blue * 255)


def compact(number: int) -> str:
    """1,234 up to 9,999; then 12.3K, 4.5M, 6.7B."""
    if abs(number) < 10_000:
        return f"{number:,}"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}".removesuffix(".0") + suffix
    return str(number)  # unreachable: abs(number) >= 10_000 matched "K"


_STATE_KEY = "wee5.rank_cards"


def provide_rank_cards(state: State) -> RankCards:
    """One `RankCards` per app, made on first use."""
    cards = state.get(_STATE_KEY)
    if not isinstance(cards, RankCards):
        cards = RankCards()
        state[_STATE_KEY] = cards
    return cards


def unchanged(if_none_match: str | None, etag: str) -> bool:
    """Whether the client's `If-None-Match` names `etag` (or is `*`): then it gets 304.
    Weak tags compare equal to strong ones here, as RFC 9110 asks of If-None-Match."""
    if not if_none_match:
        return False
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in (etag, "*") for tag in tags)
