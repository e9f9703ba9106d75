"""The profile refresh: members whom no webhook has described yet get their name, username and
avatar from Whop's `GET /users/{id}`, at most `WEE5_PROFILE_REFRESH_BATCH` per run (most
recently active first), so a large backlog spreads over runs instead of hammering Whop. A user
Whop does not know is stored with nothing known and not asked for again. Without
`WEE5_WHOP_API_KEY` Whop is off: the task says so and does nothing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from wee5_kit.logging import get_logger
from wee5_xp.jobs import TaskContext
from wee5_xp.profiles import ProfileUpdate
from wee5_xp.repository import ProfileRepository
from wee5_xp.syncs.http import ProviderError
from wee5_xp.syncs.whop_forum import WhopClient, WhopUnauthorized

log = get_logger("wee5.xp.profile_refresh")


def profile_refresh_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=int,
        help="members to look up in this run (default: WEE5_PROFILE_REFRESH_BATCH)",
    )


async def profile_refresh(ctx: TaskContext, args: argparse.Namespace) -> int:
    settings = ctx.settings
    if not settings.whop_api_key:
        print(
            "profile-refresh: WEE5_WHOP_API_KEY is not set, so Whop is off and no profiles "
            "were refreshed",
            file=sys.stderr,
        )
        return 0
    limit = args.limit if args.limit is not None else settings.profile_refresh_batch
    if limit < 1:
        print("profile-refresh: --limit must be at least 1", file=sys.stderr)
        return 2
    async with ctx.exclusive("profile-refresh") as held:
        if not held:
            print("profile-refresh: already running elsewhere; nothing done")
            return 0
        async with ctx.sessionmaker() as session:
            users = await ProfileRepository(session).users_without_profile(limit)
        updates, failed = await _look_up(ctx, users)
        async with ctx.service.transaction() as session:
            await ProfileRepository(session).save_profiles(updates, looked_up=True)
    described = sum(1 for update in updates if not update.fields.empty)
    log.info("profiles refreshed", asked=len(users), described=described, failed=failed)
    print(f"profile-refresh: {described} of {len(users)} members described, {failed} failed")
    return 1 if failed else 0


async def _look_up(ctx: TaskContext, users: list[str]) -> tuple[list[ProfileUpdate], int]:
    """Whop's profile of each user; a user whose lookup failed is left for the next run."""
    settings = ctx.settings
    updates: list[ProfileUpdate] = []
    failed = 0
    async with WhopClient(
        settings.whop_api_url,
        settings.whop_api_key,
        timeout=settings.provider_timeout_seconds,
        retry=ctx.retry_policy(),
    ) as client:
        for user_id in users:
            try:
                fields = await client.user(user_id)
            except WhopUnauthorized:
                raise  # every other lookup would fail the same way
            except ProviderError:
                failed += 1
                log.exception("profile lookup failed", user_id=user_id)
                continue
            updates.append(ProfileUpdate(user_id, fields, datetime.now(UTC)))
    return updates, failed
