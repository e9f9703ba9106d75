"""RewardsService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here;
rewards created by a commit wake the delivery worker once it committed."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.communities import communities_window, validate_community_id
from wee5_kit.logging import bound_contextvars
from wee5_kit.pagination import take_page
from wee5_kit.uow import Hook, unit_of_work
from wee5_rewards.announcements import DEFAULT_WELCOME
from wee5_rewards.errors import InvalidRequest
from wee5_rewards.mappers import (
    announcement_kind,
    announcement_status,
    announcement_target,
    announcement_to_proto,
    announcements_from_proto,
    announcements_to_proto,
    attempt_to_proto,
    badge_draft,
    badge_to_proto,
    id_cursor,
    id_token,
    member_badge_cursor,
    member_badge_to_proto,
    member_badge_token,
    page_size,
    parse_id,
    reward_to_proto,
    role_assignment_to_proto,
    rule_from_proto,
    rule_to_proto,
    settings_to_proto,
    status_filter,
)
from wee5_rewards.repository import RewardStatsRepository, RoleRepository
from wee5_rewards.service import RewardsService, Welcome

Context = grpc.aio.ServicerContext[Any, Any]


class RewardsServicer(rewards_pb2_grpc.RewardsServiceServicer):
    def __init__(
        self,
        service: RewardsService,
        sessionmaker: async_sessionmaker[AsyncSession],
        wake_delivery: Hook | None = None,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.wake_delivery = wake_delivery or (lambda: None)

    # Rules

    async def ListRewardRules(
        self, request: rewards_pb2.ListRewardRulesRequest, context: Context
    ) -> rewards_pb2.ListRewardRulesResponse:
        validate_community_id(request.community_id)
        async with self.sessionmaker() as session:
            rules = await self.service.rules_of(session, request.community_id)
        return rewards_pb2.ListRewardRulesResponse(
            rules=[rule_to_proto(request.community_id, rule) for rule in rules]
        )

    async def UpsertRewardRule(
        self, request: rewards_pb2.UpsertRewardRuleRequest, context: Context
    ) -> rewards_pb2.UpsertRewardRuleResponse:
        validate_community_id(request.community_id)
        rule = rule_from_proto(request.level, request.reward, request.enabled)
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                stored, created = await self.service.upsert_rule(
                    uow.session, request.community_id, rule
                )
        return rewards_pb2.UpsertRewardRuleResponse(
            rule=rule_to_proto(request.community_id, stored), created=created
        )

    async def DeleteRewardRule(
        self, request: rewards_pb2.DeleteRewardRuleRequest, context: Context
    ) -> rewards_pb2.DeleteRewardRuleResponse:
        validate_community_id(request.community_id)
        rule_id = parse_id(request.rule_id, "rule_id") if request.rule_id else None
        async with unit_of_work(self.sessionmaker) as uow:
            await self.service.delete_rule(
                uow.session, request.community_id, rule_id=rule_id, level=request.level or None
            )
        return rewards_pb2.DeleteRewardRuleResponse()

    async def BackfillRewards(
        self, request: rewards_pb2.BackfillRewardsRequest, context: Context
    ) -> rewards_pb2.BackfillRewardsResponse:
        validate_community_id(request.community_id)
        rule_id = parse_id(request.rule_id, "rule_id") if request.rule_id else None
        with bound_contextvars(community_id=request.community_id):
            # xp's leaderboard first, outside any transaction; then one transaction of inserts.
            members = await self.service.member_levels(request.community_id)
            async with unit_of_work(self.sessionmaker) as uow:
                result = await self.service.backfill(
                    uow.session,
                    request.community_id,
                    members,
                    rule_id=rule_id,
                    dry_run=request.dry_run,
                )
                if result.created and not request.dry_run:
                    uow.on_commit(self.wake_delivery)
        return rewards_pb2.BackfillRewardsResponse(
            created_count=result.created, skipped_count=result.skipped
        )

    # Rewards

    async def GetRewardStats(
        self, request: rewards_pb2.GetRewardStatsRequest, context: Context
    ) -> rewards_pb2.GetRewardStatsResponse:
        since, until = communities_window(request)
        async with self.sessionmaker() as session:
            days = await RewardStatsRepository(session).daily(request.community_ids, since, until)
        return rewards_pb2.GetRewardStatsResponse(
            days=[
                rewards_pb2.DailyRewards(
                    community_id=d.community_id,
                    day=d.day.date().isoformat(),
                    granted=d.granted,
                    free_days=d.free_days,
                    discount_codes=d.discount_codes,
                    amount_off_minor=d.amount_off_minor or {},
                    badges=d.badges,
                    roles=d.roles,
                )
                for d in days
            ]
        )

    async def ListRewards(
        self, request: rewards_pb2.ListRewardsRequest, context: Context
    ) -> rewards_pb2.ListRewardsResponse:
        validate_community_id(request.community_id)
        status = status_filter(request.status)
        size = page_size(request.page_size)
        before_id = id_cursor(request.page_token)
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                rows = await self.service.list_rewards(
                    session,
                    request.community_id,
                    user_id=request.user_id or None,
                    status=status,
                    before_id=before_id,
                    limit=size + 1,
                )
        page, more = take_page(rows, size)
        return rewards_pb2.ListRewardsResponse(
            rewards=[reward_to_proto(row) for row in page],
            next_page_token=id_token(page[-1].id) if more else "",
        )

    async def RetryReward(
        self, request: rewards_pb2.RetryRewardRequest, context: Context
    ) -> rewards_pb2.RetryRewardResponse:
        validate_community_id(request.community_id)
        reward_id = parse_id(request.reward_id, "reward_id")
        async with unit_of_work(self.sessionmaker) as uow:
            reward = await self.service.retry(uow.session, request.community_id, reward_id)
            uow.on_commit(self.wake_delivery)
        return rewards_pb2.RetryRewardResponse(reward=reward_to_proto(reward))

    async def ListRewardAttempts(
        self, request: rewards_pb2.ListRewardAttemptsRequest, context: Context
    ) -> rewards_pb2.ListRewardAttemptsResponse:
        validate_community_id(request.community_id)
        reward_id = parse_id(request.reward_id, "reward_id")
        async with self.sessionmaker() as session:
            attempts = await self.service.attempts(session, request.community_id, reward_id)
        return rewards_pb2.ListRewardAttemptsResponse(
            attempts=[attempt_to_proto(attempt) for attempt in attempts]
        )

    # Badges

    async def ListBadges(
        self, request: rewards_pb2.ListBadgesRequest, context: Context
    ) -> rewards_pb2.ListBadgesResponse:
        validate_community_id(request.community_id)
        size = page_size(request.page_size)
        after_id = id_cursor(request.page_token)
        async with self.sessionmaker() as session:
            rows = await self.service.list_badges(
                session, request.community_id, after_id=after_id, limit=size + 1
            )
        page, more = take_page(rows, size)
        return rewards_pb2.ListBadgesResponse(
            badges=[badge_to_proto(badge) for badge in page],
            next_page_token=id_token(page[-1].id) if more else "",
        )

    async def CreateBadge(
        self, request: rewards_pb2.CreateBadgeRequest, context: Context
    ) -> rewards_pb2.CreateBadgeResponse:
        validate_community_id(request.community_id)
        draft = badge_draft(request)
        async with unit_of_work(self.sessionmaker) as uow:
            badge = await self.service.create_badge(uow.session, request.community_id, draft)
        return rewards_pb2.CreateBadgeResponse(badge=badge_to_proto(badge))

    async def UpdateBadge(
        self, request: rewards_pb2.UpdateBadgeRequest, context: Context
    ) -> rewards_pb2.UpdateBadgeResponse:
        validate_community_id(request.community_id)
        badge_id = parse_id(request.badge_id, "badge_id")
        draft = badge_draft(request)
        async with unit_of_work(self.sessionmaker) as uow:
            badge = await self.service.update_badge(
                uow.session, request.community_id, badge_id, draft
            )
        return rewards_pb2.UpdateBadgeResponse(badge=badge_to_proto(badge))

    async def DeleteBadge(
        self, request: rewards_pb2.DeleteBadgeRequest, context: Context
    ) -> rewards_pb2.DeleteBadgeResponse:
        validate_community_id(request.community_id)
        badge_id = parse_id(request.badge_id, "badge_id")
        async with unit_of_work(self.sessionmaker) as uow:
            await self.service.delete_badge(uow.session, request.community_id, badge_id)
        return rewards_pb2.DeleteBadgeResponse()

    async def AwardBadge(
        self, request: rewards_pb2.AwardBadgeRequest, context: Context
    ) -> rewards_pb2.AwardBadgeResponse:
        validate_community_id(request.community_id)
        badge_id = parse_id(request.badge_id, "badge_id")
        async with unit_of_work(self.sessionmaker) as uow:
            held, badge, new = await self.service.award_badge(
                uow.session,
                request.community_id,
                badge_id,
                request.user_id,
                request.awarded_by or None,
            )
        return rewards_pb2.AwardBadgeResponse(
            member_badge=member_badge_to_proto(held, badge), newly_awarded=new
        )

    async def RevokeBadge(
        self, request: rewards_pb2.RevokeBadgeRequest, context: Context
    ) -> rewards_pb2.RevokeBadgeResponse:
        validate_community_id(request.community_id)
        badge_id = parse_id(request.badge_id, "badge_id")
        if not request.user_id:
            raise InvalidRequest("user_id is required")
        async with unit_of_work(self.sessionmaker) as uow:
            revoked = await self.service.revoke_badge(
                uow.session, request.community_id, badge_id, request.user_id
            )
        return rewards_pb2.RevokeBadgeResponse(revoked=revoked)

    async def ListMemberBadges(
        self, request: rewards_pb2.ListMemberBadgesRequest, context: Context
    ) -> rewards_pb2.ListMemberBadgesResponse:
        validate_community_id(request.community_id)
        size = page_size(request.page_size)
        after = member_badge_cursor(request.page_token)
        async with self.sessionmaker() as session:
            rows = await self.service.member_badges(
                session,
                request.community_id,
                user_id=request.user_id or None,
                after=after,
                limit=size + 1,
            )
        page, more = take_page(rows, size)
        return rewards_pb2.ListMemberBadgesResponse(
            member_badges=[member_badge_to_proto(held, badge) for held, badge in page],
            next_page_token=member_badge_token(page[-1][0]) if more else "",
        )

    # Settings

    async def GetRewardSettings(
        self, request: rewards_pb2.GetRewardSettingsRequest, context: Context
    ) -> rewards_pb2.GetRewardSettingsResponse:
        validate_community_id(request.community_id)
        async with self.sessionmaker() as session:
            settings = await self.service.settings(session, request.community_id)
        return rewards_pb2.GetRewardSettingsResponse(settings=settings_to_proto(settings))

    async def UpdateRewardSettings(
        self, request: rewards_pb2.UpdateRewardSettingsRequest, context: Context
    ) -> rewards_pb2.UpdateRewardSettingsResponse:
        validate_community_id(request.community_id)
        async with unit_of_work(self.sessionmaker) as uow:
            settings = await self.service.update_settings(
                uow.session,
                request.community_id,
                template=request.level_up_template,
                guild_id=request.discord_guild_id,
                intro_channel_id=request.discord_intro_channel_id,
                welcome=Welcome(
                    request.discord_welcome_channel_id,
                    request.discord_welcome_template,
                    request.discord_welcome_dm_template,
                ),
                subscription_role_id=request.discord_subscription_role_id,
            )
        return rewards_pb2.UpdateRewardSettingsResponse(settings=settings_to_proto(settings))

    async def ListRoleAssignments(
        self, request: rewards_pb2.ListRoleAssignmentsRequest, context: Context
    ) -> rewards_pb2.ListRoleAssignmentsResponse:
        validate_community_id(request.community_id)
        async with self.sessionmaker() as session:
            rows = await RoleRepository(session).assignments(
                request.community_id, user_id=request.user_id, limit=page_size(request.limit)
            )
        return rewards_pb2.ListRoleAssignmentsResponse(
            assignments=[role_assignment_to_proto(row) for row in rows]
        )

    async def LinkDiscordAccount(
        self, request: rewards_pb2.LinkDiscordAccountRequest, context: Context
    ) -> rewards_pb2.LinkDiscordAccountResponse:
        async with unit_of_work(self.sessionmaker) as uow:
            resumed = await self.service.link_discord(
                uow.session, request.user_id, request.discord_user_id
            )
        return rewards_pb2.LinkDiscordAccountResponse(roles_resumed=resumed)

    async def GetAnnouncementSettings(
        self, request: rewards_pb2.GetAnnouncementSettingsRequest, context: Context
    ) -> rewards_pb2.GetAnnouncementSettingsResponse:
        validate_community_id(request.community_id)
        async with self.sessionmaker() as session:
            settings = await self.service.announcements(session, request.community_id)
        return rewards_pb2.GetAnnouncementSettingsResponse(
            settings=announcements_to_proto(request.community_id, settings)
        )

    async def UpdateAnnouncementSettings(
        self, request: rewards_pb2.UpdateAnnouncementSettingsRequest, context: Context
    ) -> rewards_pb2.UpdateAnnouncementSettingsResponse:
        community_id = validate_community_id(request.settings.community_id)
        wanted = announcements_from_proto(request.settings)
        async with unit_of_work(self.sessionmaker) as uow:
            settings = await self.service.update_announcements(uow.session, community_id, wanted)
        return rewards_pb2.UpdateAnnouncementSettingsResponse(
            settings=announcements_to_proto(community_id, settings)
        )

    async def PreviewAnnouncement(
        self, request: rewards_pb2.PreviewAnnouncementRequest, context: Context
    ) -> rewards_pb2.PreviewAnnouncementResponse:
        validate_community_id(request.community_id)
        kind = announcement_kind(request.kind)
        target = announcement_target(request.target)
        async with self.sessionmaker() as session:
            settings = await self.service.announcements(session, request.community_id)
        return rewards_pb2.PreviewAnnouncementResponse(
            text=settings.preview(kind, request.template, target)
        )

    async def ListAnnouncements(
        self, request: rewards_pb2.ListAnnouncementsRequest, context: Context
    ) -> rewards_pb2.ListAnnouncementsResponse:
        validate_community_id(request.community_id)
        size = page_size(request.page_size)
        after = id_cursor(request.page_token)
        status = announcement_status(request.status)
        async with self.sessionmaker() as session:
            rows = await self.service.announcement_page(
                session, request.community_id, status=status, after=after, limit=size + 1
            )
        page, more = take_page(rows, size)
        return rewards_pb2.ListAnnouncementsResponse(
            announcements=[announcement_to_proto(row, attempts) for row, attempts in page],
            next_page_token=id_token(page[-1][0].id) if more else "",
        )

    async def RetryAnnouncement(
        self, request: rewards_pb2.RetryAnnouncementRequest, context: Context
    ) -> rewards_pb2.RetryAnnouncementResponse:
        validate_community_id(request.community_id)
        if request.announcement_id <= 0:
            raise InvalidRequest("announcement_id must be a positive id")
        async with unit_of_work(self.sessionmaker) as uow:
            row = await self.service.retry_announcement(
                uow.session, request.community_id, request.announcement_id
            )
        return rewards_pb2.RetryAnnouncementResponse(announcement=announcement_to_proto(row, []))

    async def BindDiscordGuild(
        self, request: rewards_pb2.BindDiscordGuildRequest, context: Context
    ) -> rewards_pb2.BindDiscordGuildResponse:
        validate_community_id(request.community_id)
        async with unit_of_work(self.sessionmaker) as uow:
            settings = await self.service.bind_guild(
                uow.session,
                request.community_id,
                guild_id=request.guild_id,
                bound_by=request.bound_by,
            )
        return rewards_pb2.BindDiscordGuildResponse(settings=settings_to_proto(settings))

    async def GetDiscordGuild(
        self, request: rewards_pb2.GetDiscordGuildRequest, context: Context
    ) -> rewards_pb2.GetDiscordGuildResponse:
        async with self.sessionmaker() as session:
            settings = await self.service.discord_guild(session, request.guild_id)
        return rewards_pb2.GetDiscordGuildResponse(
            community_id=settings.community_id,
            intro_channel_id=settings.discord_intro_channel_id or "",
            welcome_channel_id=settings.discord_welcome_channel_id or "",
            welcome_template=settings.discord_welcome_template or DEFAULT_WELCOME,
            welcome_dm_template=settings.discord_welcome_dm_template or "",
        )
