"""The experience view: what a member sees in Whop's iframe (and under /app). Their rank card,
the leaderboard (periods, past periods, pages of 100, name search, their own row pinned), their
rewards and XP history, and a live toast when they level up.

Every read is the JSON routes' own (api/xp/reads.py, api/rewards/standing.py) under the same
access rules; this module only shapes the answers for the templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import grpc
from jinja2 import Environment, pass_environment
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from markupsafe import Markup

from wee5_gateway.api.rewards.schemas import MemberRewardStanding
from wee5_gateway.api.rewards.standing import describe_reward, reward_standing, reward_state
from wee5_gateway.api.xp.boards import PublicBoards, board_audience, provide_boards
from wee5_gateway.api.xp.controller import MAX_LEADERBOARD_PAGE, MAX_NAME_SEARCH
from wee5_gateway.api.xp.reads import member_standing, read_card, read_history, read_leaderboard
from wee5_gateway.api.xp.schemas import (
    History,
    Leaderboard,
    LeaderboardEntry,
    MemberCard,
    Period,
)
from wee5_gateway.core.access import (
    WHOP_COMMUNITIES_STATE,
    Access,
    Action,
    permit,
    requires,
)
from wee5_gateway.core.cache import PerAnswer
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import AccessDep, DownstreamDep
from wee5_gateway.core.problems import Forbidden, Unauthenticated
from wee5_gateway.core.whop_access import WhopCommunities
from wee5_gateway.web.page import Page

BOARD_PAGE = MAX_LEADERBOARD_PAGE
HISTORY_PAGE = 25
PERIOD_TABS: list[tuple[Period, str]] = [
    ("all", "All time"),
    ("month", "Month"),
    ("week", "Week"),
    ("day", "Today"),
]
PERIOD_NOUNS = {"month": "month", "week": "week", "day": "day"}
MEDALS = {1: "gold", 2: "silver", 3: "bronze"}

Search = Annotated[str | None, QueryParameter(max_length=MAX_NAME_SEARCH)]
Day = Annotated[date | None, QueryParameter(description="A day inside a past period")]


def link(base: str, **params: Any) -> str:
    """`base` with the query parameters that have a value."""
    kept = {name: value for name, value in params.items() if value not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def shown_name(who: LeaderboardEntry | MemberCard) -> str:
    """How a member is named on a page: their Whop display name, else username, else id."""
    return who.display_name or who.username or who.user_id


def initials(name: str) -> str:
    if name.startswith("user_"):  # an id: Whop told us no name
        return name.removeprefix("user_")[:2].upper()
    words = [w for w in name.replace("_", " ").split() if w[:1].isalnum()]
    letters = "".join(w[0] for w in words[:2]) or name[:1]
    return letters.upper()


def avatar_src(url: str | None) -> str | None:
    """Avatars come from Whop's CDN over https; anything else is shown as initials."""
    return url if url and url.startswith("https://") else None


def percent(progress: float) -> float:
    return round(min(max(progress, 0.0), 1.0) * 100, 1)


@dataclass(frozen=True)
class Row:
    """One member on the board as the table shows them."""

    rank: int
    user_id: str
    name: str
    initials: str
    avatar: str | None
    level: int
    xp: int
    pct: float
    medal: str | None
    me: bool

    @classmethod
    def of(cls, entry: LeaderboardEntry, me: str | None) -> Row:
        name = shown_name(entry)
        return cls(
            rank=entry.rank,
            user_id=entry.user_id,
            name=name,
            initials=initials(name),
            avatar=avatar_src(entry.avatar_url),
            level=entry.level,
            xp=entry.xp,
            pct=percent(entry.progress),
            medal=MEDALS.get(entry.rank),
            me=entry.user_id == me,
        )


_BOARD_ROWS: PerAnswer[list[Row]] = PerAnswer()
_DRAWN_ROWS: PerAnswer[Markup] = PerAnswer()


@pass_environment
def drawn_rows(environment: Environment, rows: list[Row]) -> Markup:
    """A board page's rows as HTML (the templates' `drawn_rows`), drawn once per shared
    answer: drawing a hundred rows was half of the board page's CPU."""

    def draw() -> Markup:
        board_row = environment.get_template("experience/_macros.html").module.board_row  # type: ignore[attr-defined]
        return Markup("").join(board_row(row) for row in rows)

    return _DRAWN_ROWS.get(rows, None, draw)


@dataclass(frozen=True)
class BoardView:
    """A page of the board and the links around it, relative to the view it is shown in."""

    base: str
    period: Period
    at: date | None
    search: str
    board: Leaderboard
    rows: list[Row]
    pinned: Row | None
    tabs: list[tuple[str, str, bool]]
    previous_url: str | None
    previous_label: str
    current_url: str | None
    next_url: str | None
    first_url: str | None
    jump_url: str | None
    clear_url: str | None

    @property
    def period_label(self) -> str:
        if self.period == "all":
            return "All time"
        start = self.board.period_start
        if start is None:
            return ""
        if self.period == "month":
            return start.strftime("%B %Y")
        if self.period == "week":
            return f"Week of {start:%d %b %Y}"
        return f"{start:%A %d %b %Y}"


def _previous_day(period: Period, start: date | None, earliest: date | None) -> date | None:
    """A day inside the period before the one starting on `start`, when a board is kept
    for it (none before `earliest`)."""
    if period == "all" or start is None:
        return None
    previous = start - timedelta(days=1)
    return None if earliest is not None and previous < earliest else previous


async def board_view(
    access: Access,
    downstream: Downstream,
    boards: PublicBoards,
    base: str,
    period: Period,
    at: date | None,
    cursor: str | None,
    search: str | None,
) -> BoardView:
    search = (search or "").strip()
    board = await read_leaderboard(
        downstream,
        access,
        boards,
        period,
        limit=BOARD_PAGE,
        cursor=cursor,
        at=at,
        search=search,
    )
    me = access.member_user_id
    # Everyone served the same shared answer gets the same rows (the answer is the viewer's).
    rows = _BOARD_ROWS.get(board, me, lambda: [Row.of(entry, me) for entry in board.entries])
    mine = board.me
    on_page = any(row.me for row in rows)
    pinned = Row.of(mine, me) if mine is not None and not on_page else None
    jump_url = None
    if mine is not None and not on_page and (board.me_cursor or mine.rank <= BOARD_PAGE):
        jump_url = link(base, period=period, at=at, cursor=board.me_cursor) + "#me"
    previous = _previous_day(period, board.period_start, board.earliest_day)
    return BoardView(
        base=base,
        period=period,
        at=at,
        search=search,
        board=board,
        rows=rows,
        pinned=pinned,
        tabs=[
            (link(base, period=tab, search=search), label, tab == period)
            for tab, label in PERIOD_TABS
        ],
        previous_url=link(base, period=period, at=previous) if previous else None,
        previous_label=f"Previous {PERIOD_NOUNS.get(period, '')}",
        current_url=link(base, period=period) if at is not None else None,
        next_url=link(base, period=period, at=at, search=search, cursor=board.next_cursor)
        if board.next_cursor
        else None,
        first_url=link(base, period=period, at=at, search=search) if cursor else None,
        jump_url=jump_url,
        clear_url=link(base, period=period, at=at) if search else None,
    )


@dataclass(frozen=True)
class CardView:
    card: MemberCard
    name: str
    initials: str
    avatar: str | None
    pct: float
    image_url: str


async def my_card(access: Access, downstream: Downstream, boards: PublicBoards) -> CardView | None:
    """The caller's own rank card; None when they are no member here or have no XP yet."""
    user_id = access.member_user_id
    if not user_id:
        return None
    try:
        card = await read_card(downstream, access, boards, user_id)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    name = shown_name(card)
    return CardView(
        card=card,
        name=name,
        initials=initials(name),
        avatar=avatar_src(card.avatar_url),
        pct=percent(card.progress),
        image_url=f"/api/v1/communities/{access.community_id}/members/{user_id}/card.png",
    )


def live_stream_url(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/stream"


class ExperienceController(Controller):
    """`/experiences/{community_id}`: the overview (my card and the board), and the deep
    links `/leaderboard` and `/profile`."""

    path = "/experiences/{community_id:str}"
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get("/", opt=requires(Action.READ_COMMUNITY, audience=board_audience))
    async def overview(
        self,
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
        period: FromQuery[Period] = "all",
        at: Day = None,
        cursor: FromQuery[str | None] = None,
        search: Search = None,
    ) -> Template:
        cid = access.community_id
        board = await board_view(
            access, downstream, boards, page.member_url(cid), period, at, cursor, search
        )
        return page.render(
            "experience/overview.html",
            **await member_view(page, access, "overview"),
            me=await my_card(access, downstream, boards),
            view=board,
        )

    @get("/leaderboard", opt=requires(Action.READ_COMMUNITY, audience=board_audience))
    async def leaderboard(
        self,
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
        period: FromQuery[Period] = "all",
        at: Day = None,
        cursor: FromQuery[str | None] = None,
        search: Search = None,
    ) -> Template:
        cid = access.community_id
        base = page.member_url(cid, "/leaderboard")
        board = await board_view(access, downstream, boards, base, period, at, cursor, search)
        return page.render(
            "experience/leaderboard.html",
            **await member_view(page, access, "leaderboard"),
            view=board,
        )

    @get("/profile", opt=requires(Action.READ_COMMUNITY))
    async def profile(
        self,
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
        history_cursor: FromQuery[str | None] = None,
    ) -> Template:
        me = await my_card(access, downstream, boards)
        standing: MemberRewardStanding | None = None
        history: History | None = None
        user_id = access.member_user_id
        if user_id:
            level = (await member_standing(downstream, access.community_id, user_id))["level"]
            standing = await reward_standing(downstream, access.community_id, user_id, level)
            if me is not None:  # a member with no XP yet has no history either
                history = await read_history(
                    downstream, access.community_id, user_id, HISTORY_PAGE, history_cursor
                )
        return page.render(
            "experience/profile.html",
            **await member_view(page, access, "profile"),
            me=me,
            standing=standing,
            rewards=[
                (step, describe_reward(step), *reward_state(step))
                for step in (standing.rewards if standing else [])
            ],
            history=history,
            older_url=link(
                page.member_url(access.community_id, "/profile"),
                history_cursor=history.next_cursor,
            )
            if history and history.next_cursor
            else None,
        )


def member_nav(page: Page, community_id: str) -> list[tuple[str, str, str]]:
    """The member view's tabs, the same on every member page: (key, href, label)."""
    return [
        ("overview", page.member_url(community_id), "Overview"),
        ("leaderboard", page.member_url(community_id, "/leaderboard"), "Leaderboard"),
        ("profile", page.member_url(community_id, "/profile"), "My profile"),
        ("benchmarks", page.member_url(community_id, "/benchmarks"), "Benchmarks"),
        ("resources", page.member_url(community_id, "/resources"), "Resources"),
    ]


async def dashboard_url(page: Page, access: Access) -> str | None:
    """Where the member view's "Dashboard" link goes, for those who may open it (else None).
    In Whop the dashboard lives under the company (`/dashboard/{company}/…`), which the member
    view's path does not name: the community's company as Whop told it (learned when an admin
    arrives), else no link. Outside Whop, `/app/dashboard/{id}`."""
    try:
        permit(access, Action.READ_ANALYTICS)
    except (Forbidden, Unauthenticated):
        return None
    if not page.in_whop:
        return page.admin_url(access.community_id)
    whop = page.request.app.state.get(WHOP_COMMUNITIES_STATE)
    if not isinstance(whop, WhopCommunities):
        return None
    company = await whop.onboard(access.community_id)
    return page.admin_url(access.community_id, company_id=company) if company else None


async def member_view(page: Page, access: Access, current: str) -> dict[str, Any]:
    """What `experience/_view.html` needs: the tabs (`current` the one shown), my live
    level-ups when I am a member, the admin's link to the dashboard."""
    cid = access.community_id
    return {
        "community_id": cid,
        "member_id": access.member_user_id,
        "stream_url": live_stream_url(cid) if access.member_user_id else None,
        "current": current,
        # Where the card reloads itself from when a level-up or badge arrives live.
        "card_url": page.member_url(cid, "/profile"),
        "nav": member_nav(page, cid),
        "dashboard_url": await dashboard_url(page, access),
    }
