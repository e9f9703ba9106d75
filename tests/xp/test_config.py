"""Per-community XP configuration over the real xp gRPC server: defaults, validation, and each
rule it sets (XP per kind, custom kinds, cooldown, minimum length, no-XP channels, channel
multipliers, boost windows, level curve)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import activity, set_config
from tests.xp.test_record_activity import outbox_events
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_xp.models import LedgerEntry

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Xp

Sessions = async_sessionmaker[AsyncSession]


def rng(low: int, high: int | None = None) -> xp_pb2.XpRange:
    return xp_pb2.XpRange(min=low, max=low if high is None else high)


async def record(xp: Xp, community_id: str, **kw: object) -> xp_pb2.RecordActivityResponse:
    return await xp.RecordActivity(activity(community_id, **kw))  # type: ignore[arg-type]


async def member(xp: Xp, community_id: str, user_id: str = "user_a") -> xp_pb2.Member:
    reply = await xp.GetMember(xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id))
    return reply.member


async def test_a_new_community_has_the_default_rules(xp_rpc: Xp, community_id: str) -> None:
    config = (await xp_rpc.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community_id))).config

    assert (config.message.min, config.message.max) == (20, 20)
    assert (config.post.min, config.post.max) == (15, 25)
    assert (config.reaction.min, config.reaction.max) == (5, 5)
    assert (config.cooldown_seconds, config.min_message_length) == (60, 0)
    assert (config.curve, config.max_level, config.timezone) == ("default", 1000, "UTC")
    assert list(config.level_curve.coefficients) == [5, 50, 100]
    assert config.level_curve.first_level == 1


async def test_every_field_survives_a_round_trip(xp_rpc: Xp, community_id: str) -> None:
    starts = datetime(2026, 11, 20, tzinfo=UTC)
    boost = xp_pb2.BoostWindow(multiplier=2.0, name="launch weekend")
    boost.starts_at.FromDatetime(starts)
    boost.ends_at.FromDatetime(starts + timedelta(days=2))
    reply = await set_config(
        xp_rpc,
        community_id,
        message=rng(10),
        post=rng(5, 50),
        reaction=rng(0),
        custom_kinds={"intro": rng(25)},
        cooldown_seconds=30,
        min_message_length=8,
        no_xp_channel_ids=["chan_spam", "chan_bots"],
        channel_multipliers={"chan_help": 1.5},
        boosts=[boost],
        curve="custom",
        level_curve=xp_pb2.LevelCurve(shape="cubic", coefficients=[1, 5, 50, 100], first_level=0),
        max_level=200,
        timezone="Europe/Berlin",
    )

    stored = (await xp_rpc.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community_id))).config
    assert stored == reply.config
    assert reply.previous.curve == "default"
    assert (stored.post.min, stored.post.max, stored.custom_kinds["intro"].min) == (5, 50, 25)
    assert sorted(stored.no_xp_channel_ids) == ["chan_bots", "chan_spam"]
    assert dict(stored.channel_multipliers) == {"chan_help": 1.5}
    assert stored.boosts[0].name == "launch weekend"
    assert stored.boosts[0].starts_at.ToDatetime(tzinfo=UTC) == starts
    assert (stored.curve, stored.level_curve.shape, stored.max_level) == ("custom", "cubic", 200)
    assert stored.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message": rng(1001)}, "message"),
        ({"post": rng(30, 10)}, "post: min must not exceed max"),
        ({"reaction": rng(-1, 5)}, "reaction"),
        ({"custom_kinds": {"Bad Name": rng(5)}}, "custom_kinds.Bad Name"),
        ({"custom_kinds": {"intro": rng(0, 2000)}}, "custom_kinds.intro"),
        ({"cooldown_seconds": -5}, "cooldown_seconds"),
        ({"min_message_length": 5000}, "min_message_length"),
        ({"channel_multipliers": {"chan": 11.0}}, "channel_multipliers.chan"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"curve": "steepest"}, "curve"),
        ({"max_level": 5000}, "max_level"),
        (
            {"curve": "custom", "level_curve": xp_pb2.LevelCurve(shape="cubic", coefficients=[1])},
            "curve.coefficients",
        ),
        (
            {
                "curve": "custom",
                "level_curve": xp_pb2.LevelCurve(shape="linear", coefficients=[10, 0]),
            },
            "constant term",
        ),
    ],
)
async def test_out_of_bounds_config_is_rejected_naming_the_field_and_changes_nothing(
    xp_rpc: Xp, community_id: str, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await set_config(xp_rpc, community_id, **changes)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")
    config = (await xp_rpc.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community_id))).config
    assert (config.message.max, config.curve, config.timezone) == (20, "default", "UTC")


async def test_a_boost_that_ends_before_it_starts_is_rejected(
    xp_rpc: Xp, community_id: str
) -> None:
    boost = xp_pb2.BoostWindow(multiplier=2.0)
    boost.starts_at.FromDatetime(datetime(2026, 11, 21, tzinfo=UTC))
    boost.ends_at.FromDatetime(datetime(2026, 11, 20, tzinfo=UTC))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await set_config(xp_rpc, community_id, boosts=[boost])
    assert "boosts[0].ends_at" in (raised.value.details() or "")


async def test_fixed_xp_and_random_ranges_per_kind(xp_rpc: Xp, community_id: str) -> None:
    await set_config(
        xp_rpc, community_id, message=rng(7), post=rng(1, 3), reaction=rng(0), cooldown_seconds=0
    )

    message = await record(xp_rpc, community_id)
    posts = [
        (await record(xp_rpc, community_id, kind=xp_pb2.ACTIVITY_KIND_POST)).xp_awarded
        for _ in range(40)
    ]
    reaction = await record(xp_rpc, community_id, kind=xp_pb2.ACTIVITY_KIND_REACTION)

    assert message.xp_awarded == 7
    assert set(posts) <= {1, 2, 3}
    assert len(set(posts)) > 1
    # 0 XP is still an award: it counts as activity.
    assert (reaction.outcome, reaction.xp_awarded) == (xp_pb2.ACTIVITY_OUTCOME_AWARDED, 0)
    card = await member(xp_rpc, community_id)
    assert card.xp == 7 + sum(posts)
    assert (card.totals.messages, card.totals.posts, card.totals.reactions) == (1, 40, 1)


async def test_cooldown_is_the_communitys_own(xp_rpc: Xp, community_id: str) -> None:
    # The server's default is 60 s; this community has none.
    await set_config(xp_rpc, community_id, cooldown_seconds=0)
    first = await record(xp_rpc, community_id)
    second = await record(xp_rpc, community_id)
    await set_config(xp_rpc, community_id, cooldown_seconds=60)
    third = await record(xp_rpc, community_id)
    fourth = await record(xp_rpc, community_id)

    assert [r.xp_awarded for r in (first, second, third)] == [20, 20, 20]
    assert (fourth.outcome, fourth.skip_reason) == (
        xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
        xp_pb2.SKIP_REASON_COOLDOWN,
    )


async def test_messages_shorter_than_the_communitys_minimum_earn_nothing(
    xp_rpc: Xp, community_id: str
) -> None:
    await set_config(xp_rpc, community_id, min_message_length=10, cooldown_seconds=0)
    short = await record(xp_rpc, community_id, content_length=9)
    long = await record(xp_rpc, community_id, content_length=10)
    reaction = await record(xp_rpc, community_id, kind=xp_pb2.ACTIVITY_KIND_REACTION)

    assert short.skip_reason == xp_pb2.SKIP_REASON_TOO_SHORT
    assert long.xp_awarded == 20
    assert reaction.xp_awarded == 5  # the minimum is about messages


async def test_no_xp_channels_record_the_activity_but_award_nothing(
    xp_rpc: Xp, community_id: str
) -> None:
    await set_config(xp_rpc, community_id, no_xp_channel_ids=["chan_spam"], cooldown_seconds=0)
    skipped = await record(xp_rpc, community_id, channel_id="chan_spam")
    elsewhere = await record(xp_rpc, community_id, channel_id="chan_general")

    assert (skipped.outcome, skipped.skip_reason) == (
        xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
        xp_pb2.SKIP_REASON_NO_XP_CHANNEL,
    )
    assert elsewhere.xp_awarded == 20


async def test_channel_multipliers_and_the_strongest_running_boost_multiply_xp(
    xp_rpc: Xp, community_id: str
) -> None:
    now = datetime.now(UTC)
    running, weaker, over = (
        xp_pb2.BoostWindow(multiplier=2.0),
        xp_pb2.BoostWindow(multiplier=1.5),
        xp_pb2.BoostWindow(multiplier=5.0),
    )
    for boost, start, end in (
        (running, now - timedelta(hours=1), now + timedelta(hours=1)),
        (weaker, now - timedelta(hours=1), now + timedelta(hours=1)),
        (over, now - timedelta(days=3), now - timedelta(days=2)),
    ):
        boost.starts_at.FromDatetime(start)
        boost.ends_at.FromDatetime(end)
    await set_config(
        xp_rpc,
        community_id,
        channel_multipliers={"chan_help": 1.5, "chan_memes": 0.0},
        boosts=[running, weaker, over],
        cooldown_seconds=0,
    )

    plain = await record(xp_rpc, community_id)
    helped = await record(xp_rpc, community_id, channel_id="chan_help")
    memes = await record(xp_rpc, community_id, channel_id="chan_memes")
    past = await record(
        xp_rpc,
        community_id,
        occurred_at=_timestamp(now - timedelta(days=2, hours=12)),
    )

    assert plain.xp_awarded == 40  # 20 × 2 (the strongest boost running)
    assert helped.xp_awarded == 60  # 20 × 1.5 × 2
    assert memes.xp_awarded == 0
    assert past.xp_awarded == 100  # it happened inside the ended 5× boost


async def test_custom_kinds_earn_what_the_community_defines(xp_rpc: Xp, community_id: str) -> None:
    await set_config(xp_rpc, community_id, custom_kinds={"intro": rng(25)}, cooldown_seconds=0)

    intro = await record(
        xp_rpc, community_id, kind=xp_pb2.ACTIVITY_KIND_CUSTOM, custom_kind="intro"
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await record(xp_rpc, community_id, kind=xp_pb2.ACTIVITY_KIND_CUSTOM, custom_kind="selfie")

    assert intro.xp_awarded == 25
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "selfie" in (raised.value.details() or "")
    card = await member(xp_rpc, community_id)
    assert (card.totals.custom, dict(card.custom_totals)) == (1, {"intro": 1})


async def test_a_curve_change_recomputes_levels_without_announcing_levels_reached_before(
    xp_rpc: Xp, sessionmaker: Sessions, community_id: str
) -> None:
    await set_config(xp_rpc, community_id, message=rng(1000), cooldown_seconds=0)
    for user, messages in (("user_a", 5), ("user_b", 1)):  # 5,000 XP = level 11; 1,000 = 5
        for _ in range(messages):
            await record(xp_rpc, community_id, user_id=user)
    ups_before = len(await outbox_events(sessionmaker, community_id, "xp.level_up"))

    to_mee6 = await set_config(xp_rpc, community_id, curve="mee6")
    levels_mee6 = [(await member(xp_rpc, community_id, u)).level for u in ("user_a", "user_b")]
    back = await set_config(xp_rpc, community_id, curve="default")
    levels_back = [(await member(xp_rpc, community_id, u)).level for u in ("user_a", "user_b")]
    ups_after_round_trip = len(await outbox_events(sessionmaker, community_id, "xp.level_up"))
    # A gentler curve lifts user_b to levels never reached: those (and only those) are new.
    gentle = await set_config(
        xp_rpc,
        community_id,
        curve="custom",
        level_curve=xp_pb2.LevelCurve(shape="linear", coefficients=[0, 100], first_level=1),
    )

    assert (to_mee6.levels_changed, levels_mee6) == (2, [10, 4])
    assert (back.levels_changed, levels_back) == (2, [11, 5])
    assert ups_after_round_trip == ups_before
    assert gentle.levels_changed == 2
    card_b = await member(xp_rpc, community_id, "user_b")
    assert card_b.level == 11  # 1,000 XP at 100 per level
    payloads = await outbox_events(sessionmaker, community_id, "xp.level_up")
    announced = []
    for payload in payloads[ups_before:]:
        event = events_pb2.LevelUp()
        event.ParseFromString(payload)
        announced.append((event.user_id, event.from_level, event.to_level))
    assert sorted(announced) == [("user_a", 11, 51), ("user_b", 5, 11)]
    async with sessionmaker() as session:
        ledger_total = await session.scalar(
            select(func.sum(LedgerEntry.delta)).where(LedgerEntry.community_id == community_id)
        )
    assert ledger_total == 6000  # XP never moves with the curve


def _timestamp(moment: datetime) -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_a_batch_of_activities_is_answered_one_by_one_in_order(
    xp_rpc: Xp, community_id: str
) -> None:
    await set_config(xp_rpc, community_id, cooldown_seconds=0)
    batch = [activity(community_id, key=f"batch-{n}").activity for n in (1, 2, 1, 3)]
    batch.append(activity(community_id, author_is_bot=True).activity)

    reply = await xp_rpc.RecordActivities(xp_pb2.RecordActivitiesRequest(activities=batch))

    assert [r.outcome for r in reply.results] == [
        xp_pb2.ACTIVITY_OUTCOME_AWARDED,
        xp_pb2.ACTIVITY_OUTCOME_AWARDED,
        xp_pb2.ACTIVITY_OUTCOME_DUPLICATE,
        xp_pb2.ACTIVITY_OUTCOME_AWARDED,
        xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
    ]
    # Awards apply in order; the bot's message leaves the total where the last award put it.
    assert [reply.results[n].total_xp for n in (0, 1, 3, 4)] == [20, 40, 60, 60]
