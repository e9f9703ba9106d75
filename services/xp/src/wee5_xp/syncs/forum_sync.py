"""The Whop forum-post sync: each new forum post of a community becomes a post activity.

Per community (a Whop experience) it keeps the cursor after the last page it recorded and
resumes there (`after=`), so a run reads only posts it has not seen. Each page's posts are
recorded through the normal activity path (kind post, source whop, idempotency key = the post
id) in one transaction together with the cursor, so a repeated or concurrent run records
nothing twice. Without `WEE5_WHOP_API_KEY` Whop is off: the task says so and does nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.logging import get_logger
from wee5_xp.awards import ActivityInput
from wee5_xp.errors import InvalidActivity
from wee5_xp.jobs import TaskContext
from wee5_xp.repository import SyncStateRepository
from wee5_xp.service import XpService
from wee5_xp.syncs.whop_forum import ForumPostPage, WhopClient

log = get_logger("wee5.xp.forum_sync")


@dataclass
class ForumSyncReport:
    pages: int = 0
    posts: int = 0
    # Posts seen for the first time (awarded or skipped by a rule), not duplicates.
    recorded: int = 0
    awarded: int = 0


async def record_page(
    session: AsyncSession, service: XpService, community_id: str, page: ForumPostPage
) -> ForumSyncReport:
    """Records one page of posts and moves the community's cursor past it."""
    report = ForumSyncReport(pages=1, posts=len(page.posts))
    for post in page.posts:
        activity = ActivityInput(
            community_id=community_id,
            user_id=post.user_id,
            kind="post",
            source="whop",
            idempotency_key=post.id,
            content_length=post.content_length,
            occurred_at=post.created_at,
        )
        try:
            activity.validate()
        except InvalidActivity as error:
            # One malformed post must not stall the community's sync forever.
            log.error("forum post skipped", post_id=post.id[:64], reason=error.message)
            continue
        result = await service.record_activity(session, activity)
        if result.outcome != "duplicate":
            report.recorded += 1
        if result.outcome == "awarded":
            report.awarded += 1
    last_post_at = max((post.created_at for post in page.posts), default=None)
    await SyncStateRepository(session).save_forum_sync(
        community_id, page.end_cursor, report.recorded, last_post_at, datetime.now(UTC)
    )
    return report


async def sync_community(
    ctx: TaskContext, client: WhopClient, community_id: str
) -> ForumSyncReport:
    """Reads the community's posts from its stored cursor on; the caller holds its lock."""
    async with ctx.sessionmaker() as session:
        state = await SyncStateRepository(session).forum_sync(community_id)
    cursor = state.cursor if state else None
    total = ForumSyncReport()
    while True:
        page = await client.forum_posts(community_id, after=cursor)
        if not page.posts and page.end_cursor in (None, cursor):
            break
        async with ctx.service.transaction() as session:
            report = await record_page(
                session, service=ctx.service, community_id=community_id, page=page
            )
        total.pages += 1
        total.posts += report.posts
        total.recorded += report.recorded
        total.awarded += report.awarded
        if not page.has_next_page or not page.end_cursor:
            break
        cursor = page.end_cursor
    log.info(
        "forum synced",
        community_id=community_id,
        pages=total.pages,
        posts=total.posts,
        recorded=total.recorded,
        awarded=total.awarded,
    )
    return total


def forum_sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--community",
        action="append",
        help="a Whop experience id to sync (repeatable); default: every known experience",
    )
    parser.add_argument(
        "--require-key",
        action="store_true",
        help="exit 2 instead of 0 when WEE5_WHOP_API_KEY is not set",
    )


async def forum_sync(ctx: TaskContext, args: argparse.Namespace) -> int:
    settings = ctx.settings
    if not settings.whop_api_key:
        print(
            "forum-sync: WEE5_WHOP_API_KEY is not set, so Whop is off and no forum posts were "
            "synced",
            file=sys.stderr,
        )
        return 2 if args.require_key else 0
    if args.community:
        communities = list(dict.fromkeys(args.community))
    else:
        async with ctx.sessionmaker() as session:
            communities = await SyncStateRepository(session).whop_communities()
    failed = 0
    async with WhopClient(
        settings.whop_api_url,
        settings.whop_api_key,
        timeout=settings.provider_timeout_seconds,
        retry=ctx.retry_policy(),
        page_size=settings.whop_page_size,
    ) as client:
        for community_id in communities:
            async with ctx.exclusive("forum-sync", community_id) as held:
                if not held:
                    log.info("forum sync already running elsewhere", community_id=community_id)
                    continue
                try:
                    await sync_community(ctx, client, community_id)
                except Exception:
                    failed += 1
                    log.exception("forum sync failed", community_id=community_id)
    print(f"forum-sync: {len(communities) - failed} of {len(communities)} communities synced")
    return 1 if failed else 0
