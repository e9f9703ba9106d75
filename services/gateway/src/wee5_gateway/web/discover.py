"""The discover view (`/discover`, public; also `/app/discover`): what WEE5 does, the plans
with their features and prices as billing's catalogue lists them (the public plans route's
call and mapper), and rendered examples of a leaderboard and a rank card with sample data."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Template

from wee5_gateway.api.billing import mappers
from wee5_gateway.api.billing.schemas import PlanPrice, PlanView
from wee5_gateway.core.deps import EntitlementsDep, SettingsDep
from wee5_gateway.demo import DEMO_COMMUNITY, DEMO_EMAIL, DEMO_PASSWORD
from wee5_gateway.web.experience import initials
from wee5_gateway.web.page import Page

# How the catalogue's feature keys read; a key billing adds later shows as its words.
FEATURE_LABELS = {
    "custom_xp_rates": "Your own XP rates, cooldown, channels, boosts and level curve",
    "analytics": "Community analytics: active members, XP, level-ups, top movers per day",
    "reward_rules": "Your own level rewards: free days, discount codes, badges, roles",
    "badges": "Badges: define them, award them by hand or by rule",
    "multi_community": "Several communities under one owner",
    "cross_community_analytics": "Analytics across your communities",
}
# What every plan includes, free too (the catalogue lists only what plans add).
INCLUDED = (
    "XP for chat messages, forum posts and reactions",
    "Levels, rank cards and leaderboards (all time, month, week, day)",
    "Default level rewards through Whop: free days and a discount code",
    "Benchmarks and the resource library",
)
_CURRENCY_SIGNS = {"usd": "$", "eur": "€", "gbp": "£"}
_INTERVAL_WORDS = {"monthly": "month", "yearly": "year"}


def feature_label(key: str) -> str:
    return FEATURE_LABELS.get(key, key.replace("_", " ").capitalize())


def price_text(price: PlanPrice) -> str:
    """`$19 / month`; cents only when there are any."""
    whole, cents = divmod(price.amount_minor, 100)
    amount = f"{whole:,}" if cents == 0 else f"{whole:,}.{cents:02d}"
    sign = _CURRENCY_SIGNS.get(price.currency)
    shown = f"{sign}{amount}" if sign else f"{amount} {price.currency.upper()}"
    return f"{shown} / {_INTERVAL_WORDS.get(price.interval, price.interval)}"


@dataclass(frozen=True)
class PlanCard:
    plan: PlanView
    prices: list[str]
    # Features this plan adds to the one before it (plans are cumulative, cheapest first).
    added: list[str]


def plan_cards(plans: list[PlanView]) -> list[PlanCard]:
    cards = []
    before: set[str] = set()
    for plan in plans:
        cards.append(
            PlanCard(
                plan=plan,
                prices=[price_text(price) for price in plan.prices],
                added=[feature_label(key) for key in plan.features if key not in before],
            )
        )
        before |= set(plan.features)
    return cards


def feature_rows(plans: list[PlanView]) -> list[tuple[str, list[bool]]]:
    """The comparison table: each feature any plan has, and which plans have it."""
    keys: list[str] = []
    for plan in plans:
        keys += [key for key in plan.features if key not in keys]
    return [(feature_label(key), [key in plan.features for plan in plans]) for key in keys]


@dataclass(frozen=True)
class SampleMember:
    """A made-up member; the numbers follow the default level curve (ARCHITECTURE.md §4)."""

    name: str
    xp: int
    level: int
    xp_into_level: int
    xp_for_next_level: int

    @property
    def initials(self) -> str:
        return initials(self.name)

    @property
    def percent(self) -> int:
        return round(100 * self.xp_into_level / self.xp_for_next_level)


SAMPLE_BOARD = (
    SampleMember("Ava Martin", 9210, 14, 760, 1595),
    SampleMember("Noah Kim", 7910, 13, 880, 1420),
    SampleMember("Mia Rossi", 6180, 12, 405, 1255),
    SampleMember("Leo Dubois", 5320, 11, 645, 1100),
    SampleMember("Zoe Nakamura", 4010, 10, 290, 955),
    SampleMember("Omar Haddad", 2640, 8, 435, 695),
    SampleMember("Lena Fischer", 1890, 7, 265, 580),
    SampleMember("Ravi Patel", 1020, 5, 250, 380),
)
# The card shows the 7th on the board.
SAMPLE_CARD_RANK = 7
SAMPLE_CARD = {
    "member": SAMPLE_BOARD[SAMPLE_CARD_RANK - 1],
    "rank": SAMPLE_CARD_RANK,
    "week_rank": 3,
    "streak_days": 6,
    "badges": ("Early bird", "Helper"),
}
MEDALS = {1: "gold", 2: "silver", 3: "bronze"}


class DiscoverController(Controller):
    @get("/discover")
    async def discover(
        self, page: NamedDependency[Page], entitlements: EntitlementsDep, settings: SettingsDep
    ) -> Template:
        try:
            plans: list[PlanView] | None = mappers.plan_list(await entitlements.plans()).plans
        except grpc.aio.AioRpcError:
            # The catalogue is billing's; without it the rest of the page still explains WEE5.
            plans = None
        return page.render(
            "discover/index.html",
            cards=plan_cards(plans) if plans else [],
            plans=plans or [],
            feature_rows=feature_rows(plans) if plans else [],
            included=INCLUDED,
            board=list(enumerate(SAMPLE_BOARD, start=1)),
            medals=MEDALS,
            card=SAMPLE_CARD,
            # A local run's demo community (WEE5_DEMO), to click through with its account.
            demo=(
                {
                    "email": DEMO_EMAIL,
                    "password": DEMO_PASSWORD,
                    "next": f"/app/experiences/{DEMO_COMMUNITY}",
                }
                if settings.demo
                else None
            ),
        )
