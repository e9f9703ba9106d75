"""Who may call which route, in their own community and in another: every protected route ×
every kind of caller × own/other community, against the real gateway, database and xp.

The expectations are written out here (not derived from the policy table), so a change to
the policy that this matrix does not also record fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from tests.support.stripe import API_KEY as STRIPE_KEY
from tests.support.stripe import StripeServer
from tests.support.whop_api import FakeWhop, serving
from tests.support.whop_tokens import APP_ID, WhopSigningKey, whop_user
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build as build_benchmarks
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.security import new_api_key, token_hash
from wee5_gateway.db.models import ApiKey
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build as build_resources
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards
from wee5_xp.config import XpSettings
from wee5_xp.server import build

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]

CALLERS = (
    "anonymous",
    "member",
    "admin",
    "owner",
    "stranger",  # an owner of another community, with no role in this one
    "platform_admin",
    "key",  # an API key of this community with every scope
    "key_of_other",  # an API key of another community with every scope
)
# This matrix sends a few hundred requests; its subject is access, not throttling.
RELAXED_LIMITS = {
    f"rate_limit_{kind}": "100000/minute" for kind in ("auth", "read", "write", "activities")
}
OK = "ok"  # anything but 401/403: the access check let the call through

# route name → caller → expected answer, in the caller's own community.
OWN: dict[str, dict[str, int | str]] = {
    "read_leaderboard": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_member_card": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_member_card_image": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_roles": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "grant_member": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "grant_admin": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_member": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_admin": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "create_api_key": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_api_keys": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_api_key": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_audit_log": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "record_activity": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "record_activities": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_analytics": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_basic_analytics": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_plan": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "set_plan": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "award_points": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "import_members": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # A granted stream never ends, so only refusals are checked here (test_stream covers the rest).
    "open_stream": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_benchmark_settings": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "set_benchmark_settings": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "patch_benchmark_settings": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "submit_benchmark": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_my_benchmarks": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "delete_my_benchmark": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_benchmark_results": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_benchmark_review": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "review_benchmark": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),

    "list_resources": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_resource": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "download_resource": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_resource_settings": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "create_resource_upload": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "create_resource": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "update_resource": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "delete_resource": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_resource_stats": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "replace_resource_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "update_resource_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),

    "start_checkout": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "open_billing_portal": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_subscription": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # The group is the owner's: a platform admin owns no group (billing refuses, 403).
    "add_community_to_group": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=403, key=403, key_of_other=403),
    "remove_community_from_group": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=403, key=403, key_of_other=403),

    "list_reward_rules": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "upsert_reward_rule": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "delete_reward_rule": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "backfill_rewards": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_rewards": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_dead_rewards": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "retry_reward": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_reward_attempts": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_member_rewards": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_member_badges": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_badges": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "create_badge": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "update_badge": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "delete_badge": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "award_badge": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_badge": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_reward_settings": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "update_reward_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "patch_reward_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_announcement_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "update_announcement_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_announcements": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "retry_announcement": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "preview_announcement": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # A Discord server is bound by a platform admin or through the bot's install flow.
    "bind_discord_guild": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "unbind_discord_guild": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_discord_roles": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    # Any member starts linking their Discord account; callers whose member id is not a Whop
    # user id are let in and get 409.
    "start_discord_link": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),

    # Another member's history: its member and admins only, by default (test_history_privacy).
    "read_member_history": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    # Callers without a member id in the community (admins here, keys) are let in and get 409.
    "set_my_privacy": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_my_reward_standing": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_xp_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "update_xp_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "patch_xp_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "adjust_xp": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),

    # The matrix's communities keep the default visibility (members): set_leaderboard_visibility
    # sets it again, so read_leaderboard stays 401 for anonymous callers whatever the order.
    "read_leaderboard_settings": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "set_leaderboard_visibility": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "patch_leaderboard_settings": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_setup": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # Whether the community counts on its company's board (xp does not know the matrix
    # communities' companies: a caller let through gets 409).
    "read_company_board_setting": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "set_company_board_setting": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
}  # fmt: skip

# Company routes (`/api/v1/companies/{company_id}/…`) → caller → expected answer, for the
# company of the caller's own community (`biz_matrix_own`, whose only community xp knows is
# the own one: its admins and owner are admins of every community of the company). Company
# admins get past the access check to 402 (the company is not on enterprise). API keys belong
# to one community and never read a company's.
COMPANY: dict[str, dict[str, int | str]] = {
    "read_company_leaderboard": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_company_member_card": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_company_analytics": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_company_analytics_csv": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # The company view's pages: the JSON routes' access; outside Whop, no credentials is a
    # redirect to the sign-in.
    "view_company_page": dict(anonymous=303, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "view_company_page_in_whop": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "apply_shared_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_shared_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "set_shared_config_template": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "follow_shared_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "unfollow_shared_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
}  # fmt: skip
# Whop users: Whop's access check on the company itself (`admin` on `biz_…` → company admin).
WHOP_COMPANY: dict[str, dict[str, int | str]] = {
    route: dict(whop_customer=403, whop_admin=OK, whop_owner=OK) for route in COMPANY
}
OWN_COMPANY, OTHER_COMPANY = "biz_matrix_own", "biz_matrix_other"
# A WEE5 group of the own community's owner with no community in it (`grp_…`, billing's):
# its owner account is its owner (402: not on enterprise); nobody else has a role in it.
GROUP_COMPANY: dict[str, dict[str, int | str]] = {
    route: dict(anonymous=COMPANY[route]["anonymous"], member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403)
    for route in COMPANY
}  # fmt: skip

# Callers with a Whop user token (`x-whop-user-token`) and no account, each expected exactly
# like the account of the role Whop's access check gives: `customer` → member, `admin` →
# admin, and the company's first admin to arrive → owner.
WHOP_CALLERS = {"whop_customer": "member", "whop_admin": "admin", "whop_owner": "owner"}
WHOP_USERS = {caller: f"user_{caller}" for caller in WHOP_CALLERS}
# Where a Whop user is not answered like the account of its role: WEE5 groups are for
# communities outside Whop and owned by accounts, so a Whop owner owns no group (billing: 403).
WHOP_EXCEPTIONS: dict[tuple[str, str], int] = {
    ("add_community_to_group", "whop_owner"): 403,
    ("remove_community_from_group", "whop_owner"): 403,
}


@dataclass
class Community:
    id: str
    member: uuid.UUID
    admin: uuid.UUID
    owner: uuid.UUID
    key: str


@dataclass
class World:
    settings: GatewaySettings
    sessions: Sessions
    client: httpx.AsyncClient
    own: Community
    other: Community
    whop_key: WhopSigningKey

    def headers(self, caller: str) -> dict[str, str]:
        own, other = self.own, self.other
        if caller in WHOP_USERS:
            return whop_user(self.whop_key.token(WHOP_USERS[caller]))
        accounts = {
            "member": own.member,
            "admin": own.admin,
            "owner": own.owner,
            "stranger": other.owner,
        }
        if caller == "anonymous":
            return {}
        if caller == "platform_admin":
            return bearer(self.settings, platform_admin=True)
        if caller == "key":
            return {"X-API-Key": own.key}
        if caller == "key_of_other":
            return {"Authorization": f"Bearer {other.key}"}
        return bearer(self.settings, accounts[caller])


async def make_key(sessions: Sessions, community_id: str) -> tuple[uuid.UUID, str]:
    secret = new_api_key()
    key = ApiKey(
        community_id=community_id,
        name="matrix",
        prefix=secret[:14],
        key_hash=token_hash(secret),
        scopes=["activities:write", "xp:admin", "xp:read"],
    )
    async with sessions.begin() as session:
        session.add(key)
    return key.id, secret


async def make_community(sessions: Sessions) -> Community:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    member = await new_account(sessions, community_id, "member", member_user_id="user_member")
    admin = await new_account(sessions, community_id, "admin")
    owner = await new_account(sessions, community_id, "owner")
    _, key = await make_key(sessions, community_id)
    return Community(community_id, member, admin, owner, key)


@pytest.fixture(scope="module")
async def world(
    database_url: str,
    redis: Redis,
    bus: EventBus,
    sessionmaker: Sessions,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    addr, billing_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    resources_addr = f"127.0.0.1:{free_port()}"
    rewards_addr = f"127.0.0.1:{free_port()}"
    xp = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    # Stripe is a local stand-in, so that checkout lets the callers allowed through get past
    # the access check to a real answer.
    stripe = StripeServer()
    fake = stripe.__enter__()
    billing = await build_billing(
        BillingSettings(
            billing_addr=billing_addr,
            stripe_secret_key=STRIPE_KEY,
            stripe_api_base=fake.base_url,
            stripe_price_premium_monthly="price_premium_monthly",
        )
    )
    benchmarks_addr = f"127.0.0.1:{free_port()}"
    benchmarks = await build_benchmarks(BenchmarksSettings(benchmarks_addr=benchmarks_addr))
    resources = await build_resources(
        ResourcesSettings(
            resources_addr=resources_addr,
            rewards_addr=rewards_addr,
            xp_addr=addr,
            storage_dir=tmp_path_factory.mktemp("matrix-storage"),
            resources_http_host="127.0.0.1",
            resources_http_port=free_port(),
        )
    )
    rewards = await build_rewards(
        RewardsSettings(rewards_addr=rewards_addr, xp_addr=addr, rewards_workers=False)
    )
    await xp.start()
    await rewards.start()
    await billing.start()
    await benchmarks.start()
    await resources.start()
    settings = gateway_settings(
        addr,
        billing_addr=billing_addr,
        benchmarks_addr=benchmarks_addr,
        resources_addr=resources_addr,
        rewards_addr=rewards_addr,
        # Linking a Discord account starts without calling Discord.
        discord_client_id="1100000000000000001",
        discord_client_secret=SecretStr("matrix"),
        **RELAXED_LIMITS,
    )
    own, other = await make_community(sessionmaker), await make_community(sessionmaker)
    whop, whop_key = FakeWhop(), WhopSigningKey()
    whop.jwks = {"keys": [whop_key.jwk()]}
    whop.add_experience("biz_matrix_own", experience_id=own.id)
    whop.add_experience("biz_matrix_other", experience_id=other.id)
    for caller, user_id in WHOP_USERS.items():
        whop.access_levels[(user_id, own.id)] = "customer" if caller == "whop_customer" else "admin"
        whop.access_levels[(user_id, OWN_COMPANY)] = whop.access_levels[(user_id, own.id)]
    async with serving(whop, "") as whop_url:
        settings = settings.model_copy(
            update={
                "whop_app_id": APP_ID,
                "whop_jwks_url": f"{whop_url}/.well-known/jwks.json",
                "whop_api_url": f"{whop_url}/api/v1",
                "whop_api_key": SecretStr(whop.api_key),
            }
        )
        async with serve(settings) as client:
            world = World(settings, sessionmaker, client, own, other, whop_key)
            # The Whop owner is the company's first admin to open WEE5.
            first = await client.get(f"{_base(own.id)}/setup", headers=world.headers("whop_owner"))
            assert first.status_code == 200, first.text
            yield world
    await benchmarks.stop()
    await resources.stop()
    await rewards.stop()
    await billing.stop()
    await xp.stop()
    stripe.__exit__(None, None, None)


Call = Callable[[World, str, dict[str, str]], Awaitable[httpx.Response]]


def _base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def read_leaderboard(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/leaderboard", headers=h)


async def read_member_card(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member", headers=h)


async def read_member_card_image(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member/card.png", headers=h)


async def list_roles(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/roles", headers=h)


async def grant_member(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions)
    return await w.client.put(f"{_base(c)}/roles/{target}", json={"role": "member"}, headers=h)


async def grant_admin(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions)
    return await w.client.put(f"{_base(c)}/roles/{target}", json={"role": "admin"}, headers=h)


async def revoke_member(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions, c, "member")
    return await w.client.delete(f"{_base(c)}/roles/{target}", headers=h)


async def revoke_admin(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions, c, "admin")
    return await w.client.delete(f"{_base(c)}/roles/{target}", headers=h)


async def create_api_key(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(
        f"{_base(c)}/api-keys", json={"name": "bot", "scopes": ["xp:read"]}, headers=h
    )


async def list_api_keys(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/api-keys", headers=h)


async def revoke_api_key(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    key_id, _ = await make_key(w.sessions, c)
    return await w.client.delete(f"{_base(c)}/api-keys/{key_id}", headers=h)


async def read_audit_log(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/audit-log", headers=h)


async def read_analytics(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/analytics", headers=h)


async def read_basic_analytics(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/analytics/basic", headers=h)


async def read_plan(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/plan", headers=h)


async def set_plan(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"plan": "premium", "reason": "access matrix"}
    return await w.client.put(f"{_base(c)}/plan", json=body, headers=h)


async def open_stream(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/stream", headers=h)


async def list_reward_rules(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/reward-rules", headers=h)


async def upsert_reward_rule(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"kind": "free_days", "free_days": 2}
    return await w.client.put(f"{_base(c)}/reward-rules/7", json=body, headers=h)


async def delete_reward_rule(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_base(c)}/reward-rules/7", headers=h)


async def backfill_rewards(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(
        f"{_base(c)}/reward-rules/backfill", json={"dry_run": True}, headers=h
    )


async def list_rewards(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/rewards?status=dead", headers=h)


async def list_dead_rewards(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/rewards/dead", headers=h)


async def retry_reward(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(f"{_base(c)}/rewards/1/retry", headers=h)


async def list_reward_attempts(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/rewards/1/attempts", headers=h)


async def list_member_rewards(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member/rewards", headers=h)


async def list_member_badges(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member/badges", headers=h)


async def list_badges(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/badges", headers=h)


async def create_badge(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"name": f"b{uuid.uuid4().hex[:8]}", "criteria": {"kind": "level", "threshold": 5}}
    return await w.client.post(f"{_base(c)}/badges", json=body, headers=h)


async def update_badge(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"name": "renamed", "criteria": {"kind": "manual"}}
    return await w.client.put(f"{_base(c)}/badges/1", json=body, headers=h)


async def delete_badge(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_base(c)}/badges/1", headers=h)


async def award_badge(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.put(f"{_base(c)}/badges/1/members/user_member", headers=h)


async def revoke_badge(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_base(c)}/badges/1/members/user_member", headers=h)


async def read_reward_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/reward-settings", headers=h)


async def update_reward_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"level_up_template": "{member} reached {level}"}
    return await w.client.put(f"{_base(c)}/reward-settings", json=body, headers=h)


async def patch_reward_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"level_up_template": "{member} reached {level}"}
    return await w.client.patch(f"{_base(c)}/reward-settings", json=body, headers=h)


async def read_announcement_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/announcement-settings", headers=h)


async def update_announcement_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"enabled": True, "target": "whop_push"}
    return await w.client.put(f"{_base(c)}/announcement-settings", json=body, headers=h)


async def preview_announcement(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"kind": "level_up", "template": "{member} reached {level}"}
    return await w.client.post(f"{_base(c)}/announcement-settings/preview", json=body, headers=h)


async def list_announcements(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/announcements?status=dead", headers=h)


async def retry_announcement(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(f"{_base(c)}/announcements/1/retry", headers=h)


async def bind_discord_guild(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"guild_id": str(10**18 + uuid.uuid4().int % 10**17)}  # a server of its own
    return await w.client.put(f"{_base(c)}/discord-guild", json=body, headers=h)


async def unbind_discord_guild(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_base(c)}/discord-guild", headers=h)


async def list_discord_roles(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/discord-roles", headers=h)


async def start_discord_link(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(f"{_base(c)}/members/me/discord-link", headers=h)


async def record_activity(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"kind": "message", "user_id": "user_bot", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(f"{_base(c)}/activities", json=body, headers=h)


async def record_activities(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"kind": "message", "user_id": "user_bot", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(
        f"{_base(c)}/activities/batch", json={"activities": [body]}, headers=h
    )


def _benchmarks(community_id: str) -> str:
    return f"{_base(community_id)}/benchmarks"


async def read_benchmark_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_benchmarks(c)}/settings", headers=h)


async def set_benchmark_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.put(f"{_benchmarks(c)}/settings", json={"enabled": True}, headers=h)


async def patch_benchmark_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.patch(f"{_benchmarks(c)}/settings", json={"enabled": True}, headers=h)


async def submit_benchmark(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"answers": {"role": "sdr", "region": "europe", "base_salary": 50_000}}
    return await w.client.put(f"{_benchmarks(c)}/compensation/submission", json=body, headers=h)


async def list_my_benchmarks(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_benchmarks(c)}/submissions/mine", headers=h)


async def delete_my_benchmark(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_benchmarks(c)}/submissions/{uuid.uuid4()}", headers=h)


async def read_benchmark_results(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_benchmarks(c)}/compensation/results", headers=h)


async def list_benchmark_review(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_benchmarks(c)}/review", headers=h)


async def review_benchmark(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"decision": "approve", "reason": "access matrix"}
    return await w.client.post(f"{_benchmarks(c)}/review/{uuid.uuid4()}", json=body, headers=h)


async def list_resources(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/resources", headers=h)


# A resource id that does not exist: past the access check the answer is 404, never 401/403.
async def read_resource(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/resources/{uuid.uuid4()}", headers=h)


async def download_resource(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(f"{_base(c)}/resources/{uuid.uuid4()}/download", headers=h)


async def read_resource_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/resource-settings", headers=h)


async def create_resource_upload(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 1000}
    return await w.client.post(f"{_base(c)}/resources/uploads", json=body, headers=h)


async def create_resource(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"storage_key": "nowhere", "title": "t", "category": "Operations", "type": "sop"}
    return await w.client.post(f"{_base(c)}/resources", json=body, headers=h)


async def update_resource(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"title": "renamed"}
    return await w.client.patch(f"{_base(c)}/resources/{uuid.uuid4()}", json=body, headers=h)


async def delete_resource(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(f"{_base(c)}/resources/{uuid.uuid4()}", headers=h)


async def read_resource_stats(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/resources/stats", headers=h)


async def replace_resource_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"enabled": True, "categories": ["Operations", "Sales/GTM"]}
    return await w.client.put(f"{_base(c)}/resource-settings", json=body, headers=h)


async def update_resource_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"enabled": True}
    return await w.client.patch(f"{_base(c)}/resource-settings", json=body, headers=h)


async def start_checkout(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {
        "plan": "premium",
        "interval": "monthly",
        "success_url": "https://app.example.test/done",
        "cancel_url": "https://app.example.test/cancel",
    }
    return await w.client.post(f"{_base(c)}/checkout", json=body, headers=h)


async def open_billing_portal(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(f"{_base(c)}/billing-portal", json={}, headers=h)


async def read_subscription(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/subscription", headers=h)


_GROUPS: dict[str, str] = {}


async def _owners_group(w: World) -> str:
    """A WEE5 group of the own community's owner (POST /api/v1/groups is not a community
    route: tests/gateway/test_company_plans.py checks who may create one)."""
    if w.own.id not in _GROUPS:
        created = await w.client.post(
            "/api/v1/groups", json={"name": "matrix"}, headers=w.headers("owner")
        )
        assert created.status_code == 201, created.text
        _GROUPS[w.own.id] = created.json()["group_id"]
    return _GROUPS[w.own.id]


async def add_community_to_group(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.put(f"/api/v1/groups/{await _owners_group(w)}/communities/{c}", headers=h)


async def remove_community_from_group(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    group = await _owners_group(w)
    return await w.client.delete(f"/api/v1/groups/{group}/communities/{c}", headers=h)


async def award_points(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"user_id": "user_member", "reason": "intro", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(f"{_base(c)}/points", json=body, headers=h)


async def import_members(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"source": "api", "members": [{"user_id": "user_imported", "xp": 10}]}
    return await w.client.post(f"{_base(c)}/imports", json=body, headers=h)


async def read_member_history(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_someone_else/history", headers=h)


async def set_my_privacy(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"hidden_from_leaderboards": False}  # leaves the other rows' boards as they are
    return await w.client.put(f"{_base(c)}/members/me/privacy", json=body, headers=h)


async def read_my_reward_standing(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/me/reward-standing", headers=h)


async def read_xp_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/xp-config", headers=h)


async def update_xp_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {
        "message": {"min": 10, "max": 10},
        "post": {"min": 5, "max": 9},
        "reaction": {"min": 1, "max": 1},
    }
    return await w.client.put(f"{_base(c)}/xp-config", json=body, headers=h)


async def patch_xp_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.patch(f"{_base(c)}/xp-config", json={"cooldown_seconds": 0}, headers=h)


async def read_setup(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/setup", headers=h)


async def adjust_xp(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"delta": 5, "reason": "access matrix", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(
        f"{_base(c)}/members/user_member/xp-adjustments", json=body, headers=h
    )


async def read_company_board_setting(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/company-board", headers=h)


async def set_company_board_setting(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"in_company_board": False}
    return await w.client.put(f"{_base(c)}/company-board", json=body, headers=h)


async def read_leaderboard_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/leaderboard-settings", headers=h)


async def set_leaderboard_visibility(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"visibility": "members"}
    return await w.client.put(f"{_base(c)}/leaderboard-settings", json=body, headers=h)


async def patch_leaderboard_settings(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"visibility": "members"}
    return await w.client.patch(f"{_base(c)}/leaderboard-settings", json=body, headers=h)


ROUTES: dict[str, Call] = {call.__name__: call for call in (
    read_leaderboard, read_member_card, read_member_card_image, list_roles, grant_member, grant_admin, revoke_member,
    revoke_admin, create_api_key, list_api_keys, revoke_api_key, read_audit_log, record_activity,
    record_activities,
    read_analytics, read_basic_analytics, read_plan, set_plan, open_stream,
    read_benchmark_settings, set_benchmark_settings, patch_benchmark_settings, submit_benchmark, list_my_benchmarks,
    delete_my_benchmark, read_benchmark_results, list_benchmark_review, review_benchmark,

    list_resources, read_resource, download_resource, read_resource_settings,
    create_resource_upload, create_resource, update_resource, delete_resource,
    read_resource_stats, replace_resource_settings, update_resource_settings,

    read_analytics, read_plan, set_plan, open_stream, start_checkout, open_billing_portal,
    read_subscription, add_community_to_group, remove_community_from_group,

    list_reward_rules, upsert_reward_rule, delete_reward_rule, backfill_rewards, list_rewards,
    list_dead_rewards, retry_reward, list_reward_attempts, list_member_rewards,
    list_member_badges, list_badges, create_badge, update_badge, delete_badge, award_badge,
    revoke_badge, read_reward_settings, update_reward_settings, patch_reward_settings,
    read_announcement_settings, update_announcement_settings, preview_announcement,
    list_announcements, retry_announcement,
    bind_discord_guild, unbind_discord_guild, start_discord_link, list_discord_roles,

    award_points, import_members,
    read_member_history, set_my_privacy, read_my_reward_standing, read_xp_config, update_xp_config, patch_xp_config, adjust_xp,
    read_leaderboard_settings, set_leaderboard_visibility, patch_leaderboard_settings,

    read_setup, read_company_board_setting, set_company_board_setting,
)}  # fmt: skip


async def read_company_leaderboard(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/api/v1/companies/{c}/leaderboard", headers=h)


async def read_company_member_card(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/api/v1/companies/{c}/members/user_member", headers=h)


async def read_company_analytics(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/api/v1/companies/{c}/analytics", headers=h)


async def read_company_analytics_csv(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/api/v1/companies/{c}/analytics/csv", headers=h)


async def view_company_page(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    """The company view outside Whop (a page: refusals are HTML, and a GET without
    credentials is sent to the sign-in)."""
    return await w.client.get(f"/app/companies/{c}", headers=h)


async def view_company_page_in_whop(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/dashboard/{c}/company", headers=h)


async def apply_shared_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"from_community_id": w.own.id, "parts": ["xp_config"], "community_ids": [w.own.id]}
    return await w.client.post(f"/api/v1/companies/{c}/shared-config/apply", json=body, headers=h)


async def read_shared_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"/api/v1/companies/{c}/shared-config", headers=h)


async def set_shared_config_template(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body: dict[str, list[str]] = {"badges": []}
    return await w.client.put(f"/api/v1/companies/{c}/shared-config/template", json=body, headers=h)


async def follow_shared_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"parts": ["badges"], "community_ids": [w.own.id]}
    return await w.client.put(
        f"/api/v1/companies/{c}/shared-config/followers", json=body, headers=h
    )


async def unfollow_shared_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.delete(
        f"/api/v1/companies/{c}/shared-config/followers/{w.own.id}", headers=h
    )


COMPANY_ROUTES: dict[str, Call] = {
    call.__name__: call
    for call in (
        read_company_leaderboard,
        read_company_member_card,
        read_company_analytics,
        read_company_analytics_csv,
        view_company_page,
        view_company_page_in_whop,
        apply_shared_config,
        read_shared_config,
        set_shared_config_template,
        follow_shared_config,
        unfollow_shared_config,
    )
}


@pytest.fixture(scope="module")
async def companies(world: World) -> World:
    """xp learns each matrix community's company, as from a Whop webhook's envelope."""
    async with channel(world.settings.xp_addr) as chan:
        xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(chan)
        for community_id, company_id in (
            (world.own.id, OWN_COMPANY),
            (world.other.id, OTHER_COMPANY),
        ):
            await xp.RecordActivity(
                xp_pb2.RecordActivityRequest(
                    activity=xp_pb2.Activity(
                        community_id=community_id,
                        user_id="user_member",
                        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                        source=xp_pb2.SOURCE_WHOP,
                        idempotency_key=f"evt_{uuid.uuid4().hex}",
                        company_id=company_id,
                    )
                )
            )
    return world


def test_every_route_has_an_expectation_for_every_caller() -> None:
    assert set(OWN) == set(ROUTES)
    assert all(set(row) == set(CALLERS) for row in OWN.values())
    assert set(COMPANY) == set(COMPANY_ROUTES) == set(WHOP_COMPANY)
    assert all(set(row) == set(CALLERS) for row in COMPANY.values())
    assert all(set(row) == set(WHOP_CALLERS) for row in WHOP_COMPANY.values())
    assert set(GROUP_COMPANY) == set(COMPANY)
    assert all(set(row) == set(CALLERS) for row in GROUP_COMPANY.values())


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", sorted(COMPANY_ROUTES))
async def test_caller_in_own_company(companies: World, route: str, caller: str) -> None:
    response = await COMPANY_ROUTES[route](companies, OWN_COMPANY, companies.headers(caller))
    _check(response, COMPANY[route][caller])


_EMPTY_GROUPS: dict[str, str] = {}


async def _owners_empty_group(w: World) -> str:
    """A group of the own community's owner that no community joins (the group of
    `_owners_group` gains and loses the own community as the community routes run)."""
    if w.own.id not in _EMPTY_GROUPS:
        created = await w.client.post(
            "/api/v1/groups", json={"name": "matrix, empty"}, headers=w.headers("owner")
        )
        assert created.status_code == 201, created.text
        _EMPTY_GROUPS[w.own.id] = created.json()["group_id"]
    return _EMPTY_GROUPS[w.own.id]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", sorted(COMPANY_ROUTES))
async def test_caller_in_own_group(companies: World, route: str, caller: str) -> None:
    group = await _owners_empty_group(companies)
    response = await COMPANY_ROUTES[route](companies, group, companies.headers(caller))
    _check(response, GROUP_COMPANY[route][caller])


@pytest.mark.parametrize("caller", sorted(WHOP_CALLERS))
@pytest.mark.parametrize("route", sorted(COMPANY_ROUTES))
async def test_whop_caller_in_own_company(companies: World, route: str, caller: str) -> None:
    response = await COMPANY_ROUTES[route](companies, OWN_COMPANY, companies.headers(caller))
    _check(response, WHOP_COMPANY[route][caller])


@pytest.mark.parametrize("caller", [c for c in (*CALLERS, *WHOP_CALLERS) if c != "platform_admin"])
@pytest.mark.parametrize("route", sorted(COMPANY_ROUTES))
async def test_caller_in_another_company_is_refused(
    companies: World, route: str, caller: str
) -> None:
    """The other matrix company (the stranger owns its community), then one nobody knows."""
    for company_id in (OTHER_COMPANY, f"biz_{uuid.uuid4().hex[:12]}"):
        response = await COMPANY_ROUTES[route](companies, company_id, companies.headers(caller))
        expected: int | str = COMPANY[route]["anonymous"] if caller == "anonymous" else 403
        if caller == "stranger" and company_id == OTHER_COMPANY:
            expected = OK  # their own company (402: not on enterprise)
        _check(response, expected)


def _check(response: httpx.Response, expected: int | str) -> None:
    if expected == OK:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    elif expected == 303:  # a page outside Whop: to the sign-in, and back afterwards
        assert response.status_code == expected, response.text
        assert response.headers["location"].startswith("/app/sign-in?next="), response.headers
    else:
        assert response.status_code == expected, response.text
        page = response.request.url.path.startswith(("/app/", "/dashboard/"))
        kind = "text/html" if page else "application/problem+json"
        assert response.headers["content-type"].startswith(kind), response.headers


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_caller_in_own_community(world: World, route: str, caller: str) -> None:
    if route == "open_stream" and OWN[route][caller] == OK:
        pytest.skip("a granted stream never ends; tests/gateway/test_stream.py covers it")
    response = await ROUTES[route](world, world.own.id, world.headers(caller))
    _check(response, OWN[route][caller])


@pytest.mark.parametrize("caller", sorted(WHOP_CALLERS))
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_whop_caller_in_own_community(world: World, route: str, caller: str) -> None:
    expected = WHOP_EXCEPTIONS.get((route, caller), OWN[route][WHOP_CALLERS[caller]])
    if route == "open_stream" and expected == OK:
        pytest.skip("a granted stream never ends; tests/gateway/test_stream.py covers it")
    response = await ROUTES[route](world, world.own.id, world.headers(caller))
    _check(response, expected)


@pytest.mark.parametrize(
    "caller", [c for c in (*CALLERS, *WHOP_CALLERS) if c not in ("platform_admin", "stranger")]
)
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_caller_in_another_community_is_refused(
    world: World, route: str, caller: str
) -> None:
    """Tenant isolation: the same caller against a community where it has no role."""
    third = f"exp_{uuid.uuid4().hex[:12]}"
    response = await ROUTES[route](world, third, world.headers(caller))
    _check(response, 401 if caller == "anonymous" else 403)


# Not JSON at all, and JSON of the wrong shape: either would be a 400 for a caller let in.
MALFORMED_BODIES = [b"{not json", b'{"kind": 42}']


@pytest.mark.parametrize("body", MALFORMED_BODIES)
async def test_no_credentials_and_a_malformed_body_is_401_not_400(
    world: World, body: bytes
) -> None:
    """Access is checked before the body is read."""
    response = await world.client.post(
        f"{_base(world.own.id)}/activities",
        content=body,
        headers={"content-type": "application/json"},
    )
    _check(response, 401)


@pytest.mark.parametrize("body", MALFORMED_BODIES)
@pytest.mark.parametrize("caller", ["member", "member_key"])
async def test_a_members_credentials_and_a_malformed_body_on_an_admin_route_is_403_not_400(
    world: World, caller: str, body: bytes
) -> None:
    if caller == "member_key":
        secret = new_api_key()
        async with world.sessions.begin() as session:
            session.add(
                ApiKey(
                    community_id=world.own.id,
                    name="member-scoped",
                    prefix=secret[:14],
                    key_hash=token_hash(secret),
                    scopes=["xp:read"],
                )
            )
        headers = {"X-API-Key": secret}
    else:
        headers = world.headers(caller)
    for path in ("points", "members/user_a/xp-adjustments", "reward-rules/5"):
        method = world.client.put if path.startswith("reward-rules") else world.client.post
        response = await method(
            f"{_base(world.own.id)}/{path}",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        _check(response, 403)
