"""Announcement settings: templates checked and rendered (escaped for where they are sent),
the level-up cadence, and the settings API through the real gateway, rewards and billing."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.rewards.test_gateway import Api, api, url
from wee5_kit.errors import InvalidField
from wee5_rewards.announcements import (
    Announcements,
    Cadence,
    Kind,
    Target,
    check_template,
    escape,
    mention,
    render,
)
from wee5_rewards.models import Announcement, AnnouncementAttempt

__all__ = ["api"]  # the module's fixture: real gateway, rewards and billing
ZWSP = "\u200b"
Sessions = async_sessionmaker[AsyncSession]


def test_every_five_levels_skips_the_levels_between_and_every_level_from_a_point() -> None:
    every_five = Cadence(every=5)
    assert [level for level in range(2, 16) if every_five.announces(level)] == [5, 10, 15]
    with_tail = Cadence(every=5, every_from=20)
    assert [level for level in range(16, 24) if with_tail.announces(level)] == [20, 21, 22, 23]


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("GG {nope}!", "{nope}"),
        ("{member.__class__}", "{member.__class__}"),
        ("{0}", "{0}"),
    ],
)
def test_a_template_naming_an_unknown_variable_is_refused_with_its_name(
    template: str, named: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        check_template("level_up_template", template)
    assert refused.value.field == "level_up_template"
    assert named in refused.value.message


def test_a_template_with_a_format_or_an_unclosed_brace_is_refused() -> None:
    for template in ("{level:>10}", "{member!r}", "level {level"):
        with pytest.raises(InvalidField):
            check_template("reward_template", template)
    assert check_template("badge_template", "{{literal}} {badge}") == "{{literal}} {badge}"


@pytest.mark.parametrize("target", list(Target))
def test_a_display_name_cannot_mention_everyone_or_add_markdown_wherever_it_is_sent(
    target: Target,
) -> None:
    hostile = "@everyone **free nitro** <@&123> [x](http://evil)"
    text = render("{member} reached {level}", {"member": hostile, "level": "5"}, target)

    assert "@everyone" not in text
    assert "@here" not in text
    assert f"@{ZWSP}everyone" in text
    if target.markdown:
        assert "**" not in text.replace("\\*", "")
        assert "<@&" not in text
        assert "](" not in text.replace("\\]\\(", "")
    assert text.endswith(" reached 5")


def test_mention_pings_only_the_member_it_names() -> None:
    discord = mention(
        Target.DISCORD_CHANNEL, user_id="80351110224678912", username="ada", display_name="Ada"
    )
    assert discord == "<@80351110224678912>"
    # Not a snowflake: the name, escaped, instead of a mention of someone else.
    forged = mention(
        Target.DISCORD_DM, user_id="123> <@everyone", username="", display_name="@here"
    )
    assert forged == f"@{ZWSP}here"
    whop = mention(
        Target.ACTIVITY_CHANNEL, user_id="user_1", username="ada lovelace@x", display_name="Ada"
    )
    assert whop == "@adalovelacex"
    assert escape("line\nbreak\x00", Target.WHOP_PUSH) == "linebreak"


def test_a_preview_renders_sample_values_as_the_target_shows_them() -> None:
    settings = Announcements(target=Target.DISCORD_CHANNEL, channel_id="123")
    text = settings.preview(Kind.LEVEL_UP, "GG {mention} ({member}), level {level}!")
    assert text == "GG <@80351110224678912> (Ada Lovelace), level 5!"
    assert settings.preview(Kind.BADGE) == "🏅 Ada Lovelace earned the Early Bird badge!"


# Through the gateway


async def test_admins_read_the_defaults_and_turn_announcements_on_without_premium(
    api: Api,
) -> None:
    community_id, admin, member = await api.community("free")

    default = await api.client.get(url(community_id, "/announcement-settings"), headers=admin)
    as_member = await api.client.get(url(community_id, "/announcement-settings"), headers=member)
    turned_on = await api.client.put(
        url(community_id, "/announcement-settings"),
        json={"enabled": True, "target": "whop_channel", "channel_id": "chat_feed_abc123"},
        headers=admin,
    )
    new_text = await api.client.put(
        url(community_id, "/announcement-settings"),
        json={"enabled": True, "level_up_template": "{member} hit {level}"},
        headers=admin,
    )

    assert default.status_code == 200, default.text
    settings = default.json()
    assert settings["enabled"] is False
    assert settings["target"] == "activity_channel"
    assert "{level}" in settings["level_up_template"]
    assert {"member", "mention", "old_level", "next_level_xp", "badge"} <= set(
        settings["variables"]
    )
    assert as_member.status_code == 403
    assert turned_on.status_code == 200, turned_on.text
    assert turned_on.json()["channel_id"] == "chat_feed_abc123"
    assert new_text.status_code == 402
    assert new_text.json()["required_plan"] == "premium"
    assert await api.audit(community_id) == ["announcement_settings.changed"]


async def test_an_unknown_variable_or_a_channel_that_does_not_fit_is_a_422_naming_it(
    api: Api,
) -> None:
    community_id, admin, _ = await api.community("premium")

    unknown = await api.client.put(
        url(community_id, "/announcement-settings"),
        json={"reward_template": "{member} got {nope}"},
        headers=admin,
    )
    no_channel = await api.client.put(
        url(community_id, "/announcement-settings"),
        json={"target": "discord_channel"},
        headers=admin,
    )
    previewed_unknown = await api.client.post(
        url(community_id, "/announcement-settings/preview"),
        json={"kind": "reward", "template": "{nope}"},
        headers=admin,
    )

    for answer, field in (
        (unknown, "reward_template"),
        (no_channel, "channel_id"),
        (previewed_unknown, "template"),
    ):
        # Well-formed, but breaking a named rule: 422 with the field, as everywhere.
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert [error["key"] for error in problem["errors"]] == [field]
    assert "{nope}" in unknown.json()["errors"][0]["message"]


async def test_a_premium_admin_sets_the_texts_and_previews_them_escaped(api: Api) -> None:
    community_id, admin, member = await api.community("premium")

    saved = await api.client.put(
        url(community_id, "/announcement-settings"),
        json={
            "enabled": True,
            "target": "discord_channel",
            "channel_id": "112233445566778899",
            "every_levels": 5,
            "level_up_template": "GG {mention}, level {level}!",
            "badge_template": "{member} is now {badge}",
        },
        headers=admin,
    )
    preview = await api.client.post(
        url(community_id, "/announcement-settings/preview"),
        json={"kind": "level_up"},
        headers=admin,
    )
    as_push = await api.client.post(
        url(community_id, "/announcement-settings/preview"),
        json={"kind": "badge", "target": "whop_push"},
        headers=admin,
    )
    # One level-up text: the reward settings show what announcements use.
    legacy = await api.client.get(url(community_id, "/reward-settings"), headers=member)

    assert saved.status_code == 200, saved.text
    assert saved.json()["every_levels"] == 5
    assert saved.json()["reward_template"] == "🎁 {member} earned {reward}!"  # the default
    assert preview.json() == {"text": "GG <@80351110224678912>, level 5!"}
    assert as_push.json() == {"text": "Ada Lovelace is now Early Bird"}
    assert legacy.json()["level_up_template"] == "GG {mention}, level {level}!"


async def test_admins_list_announcements_with_their_attempts_and_retry_a_dead_one(
    api: Api,
) -> None:
    community_id, admin, _ = await api.community("free")
    async with api.sessions.begin() as session:
        dead = Announcement(
            community_id=community_id,
            user_id="user_member",
            kind="level_up",
            event_key="level_up:5",
            target="whop_push",
            channel_id=community_id,
            template="{member} reached {level}",
            text="Member reached 5",
            status="dead",
            attempts=1,
            budget_used=1,
            last_error="Whop answered 503",
        )
        session.add(dead)
        await session.flush()
        session.add(
            AnnouncementAttempt(
                announcement_id=dead.id, number=1, outcome="failed", http_status=503
            )
        )

    listed = await api.client.get(url(community_id, "/announcements?status=dead"), headers=admin)
    retried = await api.client.post(
        url(community_id, f"/announcements/{dead.id}/retry"), headers=admin
    )
    again = await api.client.post(
        url(community_id, f"/announcements/{dead.id}/retry"), headers=admin
    )
    missing = await api.client.post(
        url(community_id, "/announcements/999999999/retry"), headers=admin
    )

    assert listed.status_code == 200, listed.text
    (shown,) = listed.json()["announcements"]
    assert (shown["kind"], shown["target"], shown["text"]) == (
        "level_up",
        "whop_push",
        "Member reached 5",
    )
    assert [(a["outcome"], a["http_status"]) for a in shown["attempts"]] == [("failed", 503)]
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    assert again.status_code == 409  # pending now: nothing to retry
    assert missing.status_code == 404
    assert await api.audit(community_id) == ["announcement.retried"]


async def test_an_id_or_level_too_large_for_the_contract_is_a_400_not_a_500(api: Api) -> None:
    community_id, admin, _ = await api.community("premium")
    huge = 123226330556259392301298578545925160960  # make fuzz found these answered 500

    retried = await api.client.post(
        url(community_id, f"/announcements/{huge}/retry"), headers=admin
    )
    deleted = await api.client.delete(url(community_id, "/reward-rules/7321553698"), headers=admin)

    assert retried.status_code == 400, retried.text
    assert deleted.status_code == 400, deleted.text
