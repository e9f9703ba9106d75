"""Who is calling, and what they may do in which community.

Every protected route names one `Action` (`opt=requires(Action.X)`); `access_guard` checks the
caller against the policy table below (also in the README) before the request body is read,
and keeps what it learned about the caller there for the `access` dependency. A caller
with no role in a community gets 403 for every action in it: no route reads or writes another
community's data.

A route may also let the community choose its readers (`requires(..., audience=lookup)`): the
leaderboard is public (no credentials needed), for its members (the action's rule) or for
admins, as the community set it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from wee5_gateway.core.access_cache import AccessCache, provide_access_cache
from wee5_gateway.core.companies import Companies, provide_companies
from wee5_gateway.core.entitlements import (
    CompanyEntitlements,
    Entitlements,
    provide_entitlements,
)
from wee5_gateway.core.problems import Forbidden, Unauthenticated
from wee5_gateway.core.security import API_KEY_PREFIX, AccessTokens, InvalidToken, token_hash
from wee5_gateway.core.whop_access import WhopCommunities
from wee5_gateway.core.whop_identity import WHOP_TOKEN_HEADER, InvalidWhopToken, WhopTokenVerifier
from wee5_kit.communities import (
    is_community_id,
    is_group_id,
    validate_community_id,
    validate_company_id,
    validate_member_id,
)

ACCESS_COOKIE = "wee5_access"
_PRINCIPAL_STATE_KEY = "wee5.principal"
API_KEY_HEADER = "x-api-key"
# Where the app keeps Whop sign-in (`app.state`), when WEE5_WHOP_APP_ID turns it on.
WHOP_VERIFIER_STATE = "whop_verifier"
WHOP_COMMUNITIES_STATE = "whop_communities"


class Role(IntEnum):
    """Roles in one community; each includes what the ones below may do."""

    MEMBER = 1
    ADMIN = 2
    OWNER = 3


class Action(StrEnum):
    READ_COMMUNITY = "community:read"  # leaderboards, rank cards, the live stream
    WRITE_ACTIVITIES = "activities:write"  # the generic activity intake
    READ_ANALYTICS = "analytics:read"
    MANAGE_MEMBERS = "members:manage"  # grant/revoke the member role, link member ids
    MANAGE_ADMINS = "admins:manage"  # grant/revoke admin and owner
    MANAGE_API_KEYS = "api_keys:manage"
    READ_AUDIT_LOG = "audit_log:read"
    READ_BILLING = "billing:read"  # the community's plan and subscription
    SET_PLAN = "plan:set"  # platform admins only, until Stripe drives plans
    SUBMIT_BENCHMARKS = "benchmarks:submit"  # one's own submissions: write, list, delete
    READ_BENCHMARKS = "benchmarks:read"  # aggregated results and whether benchmarks are on
    REVIEW_BENCHMARKS = "benchmarks:review"  # the outlier review queue
    MANAGE_BENCHMARKS = "benchmarks:manage"  # turn benchmarks on or off

    READ_RESOURCES = "resources:read"  # the resource library: list, search, read, settings
    DOWNLOAD_RESOURCES = "resources:download"  # signed download links (active membership)
    MANAGE_RESOURCES = "resources:manage"  # upload, create, edit, delete; library settings
    READ_RESOURCE_STATS = "resources:stats"  # downloads over time, top resources, who

    MANAGE_BILLING = "billing:manage"  # Stripe checkout and the customer portal
    READ_SUBSCRIPTION = "subscription:read"  # plan, status, interval and period end
    MANAGE_GROUPS = "groups:manage"  # put one's community into one's WEE5 group, or out

    READ_REWARDS = "rewards:read"  # reward rules, the reward ledger, dead letters, attempts
    MANAGE_REWARDS = "rewards:manage"  # rules, backfills, retries, the level-up message
    MANAGE_BADGES = "badges:manage"  # badge definitions, manual awards and revocations
    # Bind a Discord server to the community without the install flow's proof.
    BIND_DISCORD_GUILD = "discord_guild:bind"  # platform admins only

    AWARD_POINTS = "points:award"  # points for actions (intro, …), by admins or bots
    IMPORT_MEMBERS = "members:import"  # members' XP from another bot (MEE6, exports)
    MANAGE_XP_CONFIG = "xp_config:manage"  # read and change the XP rules (changing: premium)
    ADJUST_XP = "xp:adjust"  # ± a member's XP with a reason
    MANAGE_LEADERBOARD = "leaderboard:manage"  # who may read the board: public, members, admins
    READ_SETUP = "setup:read"  # what is left to set up for Whop (webhook URL, API key, plan)
    # A company's routes (`/api/v1/companies/{company_id}/…`): its board and member cards.
    READ_COMPANY = "company:read"
    # Copy one XP config, reward rules and badges to several communities of the company.
    MANAGE_COMPANY_CONFIG = "company_config:manage"


@dataclass(frozen=True)
class Rule:
    # The least role an account needs; None: accounts cannot do it (keys or platform admins).
    min_role: Role | None
    # The scope an API key needs; None: API keys cannot do it.
    scope: str | None = None
    platform_admin_only: bool = False


POLICY: dict[Action, Rule] = {
    Action.READ_COMMUNITY: Rule(Role.MEMBER, scope="xp:read"),
    Action.WRITE_ACTIVITIES: Rule(None, scope="activities:write"),
    Action.READ_ANALYTICS: Rule(Role.ADMIN, scope="xp:admin"),
    Action.MANAGE_MEMBERS: Rule(Role.ADMIN),
    Action.MANAGE_ADMINS: Rule(Role.OWNER),
    Action.MANAGE_API_KEYS: Rule(Role.OWNER),
    Action.READ_AUDIT_LOG: Rule(Role.OWNER),
    Action.READ_BILLING: Rule(Role.OWNER),
    Action.SET_PLAN: Rule(None, platform_admin_only=True),
    Action.SUBMIT_BENCHMARKS: Rule(Role.MEMBER),
    Action.READ_BENCHMARKS: Rule(Role.MEMBER),
    Action.REVIEW_BENCHMARKS: Rule(Role.ADMIN),
    Action.MANAGE_BENCHMARKS: Rule(Role.OWNER),
    Action.READ_RESOURCES: Rule(Role.MEMBER),
    Action.DOWNLOAD_RESOURCES: Rule(Role.MEMBER),
    Action.MANAGE_RESOURCES: Rule(Role.ADMIN),
    Action.READ_RESOURCE_STATS: Rule(Role.ADMIN),
    Action.MANAGE_BILLING: Rule(Role.OWNER),
    Action.READ_SUBSCRIPTION: Rule(Role.ADMIN),
    Action.MANAGE_GROUPS: Rule(Role.OWNER),
    Action.READ_REWARDS: Rule(Role.ADMIN, scope="xp:admin"),
    Action.MANAGE_REWARDS: Rule(Role.ADMIN),
    Action.MANAGE_BADGES: Rule(Role.ADMIN),
    Action.BIND_DISCORD_GUILD: Rule(None, platform_admin_only=True),
    Action.AWARD_POINTS: Rule(Role.ADMIN, scope="xp:admin"),
    Action.IMPORT_MEMBERS: Rule(Role.OWNER),
    Action.MANAGE_XP_CONFIG: Rule(Role.ADMIN, scope="xp:admin"),
    Action.ADJUST_XP: Rule(Role.ADMIN, scope="xp:admin"),
    Action.MANAGE_LEADERBOARD: Rule(Role.ADMIN),
    Action.READ_SETUP: Rule(Role.ADMIN),
    # The role is the caller's in the company (`access_in_company`); API keys belong to one
    # community and never read a company's.
    Action.READ_COMPANY: Rule(Role.ADMIN),
    Action.MANAGE_COMPANY_CONFIG: Rule(Role.ADMIN),
}
SCOPES = frozenset(rule.scope for rule in POLICY.values() if rule.scope)


@dataclass(frozen=True)
class Principal:
    """The caller: anonymous, an account (access token), an API key, a Whop user (the
    `x-whop-user-token` of Whop's iframe), whose role Whop's access check gives, or a Discord
    user running a slash command (signed by Discord; their role from the interaction)."""

    account_id: uuid.UUID | None = None
    is_platform_admin: bool = False
    api_key_id: uuid.UUID | None = None
    api_key_community: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    whop_user_id: str | None = None
    discord_user_id: str | None = None

    @property
    def actor_id(self) -> str:
        """Who acts, as other services record it: the account id, `api_key:<id>`, the Whop
        user id (`user_…`), or `discord:<Discord user id>`."""
        if self.account_id is not None:
            return str(self.account_id)
        if self.api_key_id is not None:
            return f"api_key:{self.api_key_id}"
        if self.discord_user_id is not None:
            return f"discord:{self.discord_user_id}"
        return self.whop_user_id or ""

    @property
    def is_anonymous(self) -> bool:
        return (
            self.account_id is None
            and self.api_key_id is None
            and self.whop_user_id is None
            and self.discord_user_id is None
        )


ANONYMOUS = Principal()


@dataclass(frozen=True)
class Access:
    """What the guard learned: the caller's role in the community and their member id there."""

    principal: Principal
    community_id: str
    role: Role | None
    member_user_id: str | None


async def resolve_principal(
    request: ASGIConnection[Any, Any, Any, Any],
    tokens: AccessTokens,
    cache: AccessCache,
) -> Principal:
    """Reads the bearer token, API key or access cookie. A credential that is present but
    invalid is a 401, never a silent fall back to anonymous."""
    credential = _credential(request)
    if credential is None:
        return await _whop_user(request)
    if credential.startswith(API_KEY_PREFIX):
        key = await cache.api_key(token_hash(credential))
        if key is None:
            raise Unauthenticated("the API key is unknown or revoked")
        return Principal(api_key_id=key.id, api_key_community=key.community_id, scopes=key.scopes)
    try:
        claims = tokens.decode(credential)
    except InvalidToken:
        raise Unauthenticated("the access token is invalid or expired") from None
    # The token's claim is not enough: the database must still say so (revocable; see
    # AccessCache.platform_admin). Only tokens that claim it cost the lookup.
    is_platform_admin = claims.is_platform_admin and await cache.platform_admin(claims.account_id)
    return Principal(account_id=claims.account_id, is_platform_admin=is_platform_admin)


async def _whop_user(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The Whop user of `x-whop-user-token`, when Whop sign-in is on (else the header is
    ignored); a token that fails verification is a 401."""
    token = request.headers.get(WHOP_TOKEN_HEADER)
    verifier = request.app.state.get(WHOP_VERIFIER_STATE)
    if not token or not isinstance(verifier, WhopTokenVerifier):
        return ANONYMOUS
    try:
        user = await verifier.verify(token.strip())
    except InvalidWhopToken as error:
        raise Unauthenticated(str(error)) from None
    return Principal(whop_user_id=user.user_id)


def _credential(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("use `Authorization: Bearer <token or API key>`")
        return value.strip()
    api_key = request.headers.get(API_KEY_HEADER)
    if api_key:
        return api_key.strip()
    return request.cookies.get(ACCESS_COOKIE) or None


def remember_principal(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
) -> None:
    """Keeps the resolved caller on the request: a JWT is decoded (or an API key looked up)
    once per request, by whichever of the rate limiter and the guard runs first."""
    connection.scope.setdefault("state", {})[_PRINCIPAL_STATE_KEY] = principal


def known_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller already resolved for this request, if it was."""
    principal = connection.scope.get("state", {}).get(_PRINCIPAL_STATE_KEY)
    return principal if isinstance(principal, Principal) else None


GUARDED_ACTION = "action"
GUARDED_AUDIENCE = "audience"
GUARDED_COMPANY = "company"
# Where the guard keeps the caller's access for the `access` dependency (scope["state"]).
_ACCESS_STATE_KEY = "wee5.access"


class Audience(StrEnum):
    """Who may read a route whose community chooses its readers (the leaderboard)."""

    PUBLIC = "public"  # anyone, without credentials too
    MEMBERS = "members"  # the route's own rule
    ADMINS = "admins"  # admins and owners (API keys: `xp:admin`)


# A community's audience of a route, as the route's `requires(..., audience=...)` looks it up.
AudienceLookup = Callable[[ASGIConnection[Any, Any, Any, Any], str], Awaitable[Audience]]
_ADMINS_ONLY = Rule(Role.ADMIN, scope="xp:admin")


def requires(action: Action, *, audience: AudienceLookup | None = None) -> dict[str, Any]:
    """The `opt` of a route that needs `action` in the community of its path:
    `@get("/", opt=requires(Action.READ_COMMUNITY))`. With `audience`, the community decides
    who reads it: public (no credentials needed), its members (`action`'s rule) or admins."""
    if audience is None:
        return {GUARDED_ACTION: action}
    return {GUARDED_ACTION: action, GUARDED_AUDIENCE: audience}


def requires_company(action: Action) -> dict[str, Any]:
    """The `opt` of a route that needs `action` in the company of its `{company_id}` path."""
    return {GUARDED_ACTION: action, GUARDED_COMPANY: True}


async def access_in_company(
    principal: Principal,
    company_id: str,
    companies: Companies,
    cache: AccessCache,
    whop: WhopCommunities | None = None,
    entitlements: Entitlements | None = None,
) -> Access:
    """The caller's role in a company (in `Access.community_id`: the company's id).

    A Whop user: Whop's access check on the company itself (`admin` on `biz_…`: an owner or
    moderator of the company) -> admin; `customer` -> member. An account: its lowest role
    across every community xp knows of the company, so an admin of one community (and no
    more) has no company role and sees nothing of the others. A WEE5 group (`grp_…`, from
    billing through the cached `entitlements`): its owner account is the company's owner;
    another account has its lowest role across the group's communities."""
    if principal.whop_user_id is not None and whop is not None:
        level = await whop.levels.of(principal.whop_user_id, company_id)
        role = {"admin": Role.ADMIN, "customer": Role.MEMBER}.get(level)
        return Access(principal, company_id, role, principal.whop_user_id)
    if principal.account_id is None:
        return Access(principal, company_id, None, None)
    group = await _group(company_id, entitlements)
    if group is not None and group.owner_account_id == str(principal.account_id):
        return Access(principal, company_id, Role.OWNER, None)
    community_ids = (
        group.community_ids
        if group is not None
        else tuple(c.community_id for c in await companies.communities(company_id))
    )
    roles: list[Role] = []
    for community_id in community_ids:
        membership = await cache.role_of(community_id, principal.account_id)
        if membership is None:
            roles = []
            break
        roles.append(Role[membership.role.upper()])
    company_role = min(roles) if roles else None
    if principal.is_platform_admin:
        company_role = Role.OWNER
    return Access(principal, company_id, company_role, None)


async def _group(company_id: str, entitlements: Entitlements | None) -> CompanyEntitlements | None:
    """The WEE5 group `company_id` as billing knows it; None for any other company."""
    if entitlements is None or not is_group_id(company_id):
        return None
    company = await entitlements.of_company(company_id)
    return company if company.kind == "group" else None


def permit_in_company(access: Access, action: Action) -> None:
    """401 without credentials; 403 for an API key (keys belong to one community) and for a
    caller whose company role is below the policy's."""
    principal = access.principal
    require_credentials(principal)
    if principal.api_key_id is not None:
        raise Forbidden("an API key belongs to one community; company routes need an account")
    if principal.is_platform_admin:
        return
    rule = POLICY[action]
    if rule.min_role is None or access.role is None or access.role < rule.min_role:
        raise Forbidden(
            "this needs an admin of the company: a Whop admin of the company, or an admin of "
            "every one of its communities"
        )


async def access_in(
    principal: Principal,
    community_id: str,
    cache: AccessCache,
    whop: WhopCommunities | None = None,
) -> Access:
    """Who the caller is in `community_id`: their role and member id (accounts from their
    roles, Whop users from Whop's access check, where their member id is their Whop id)."""
    if principal.whop_user_id is not None and whop is not None:
        whop_role = await whop.role_of(principal.whop_user_id, community_id)
        role_of_whop_user = Role[whop_role.upper()] if whop_role else None
        return Access(principal, community_id, role_of_whop_user, principal.whop_user_id)
    if principal.account_id is None:
        return Access(principal, community_id, None, None)
    membership = await cache.role_of(community_id, principal.account_id)
    role = Role[membership.role.upper()] if membership else None
    member_user_id = membership.member_user_id if membership else None
    if principal.is_platform_admin:
        role = role or Role.OWNER
    return Access(principal, community_id, role, member_user_id)


def require_credentials(principal: Principal) -> None:
    """401 for a caller without credentials."""
    if principal.is_anonymous:
        raise Unauthenticated("sign in, or send an API key")


def permit(access: Access, action: Action, rule: Rule | None = None) -> None:
    """401 for a caller without credentials, 403 for one the policy does not allow `action`
    (or `rule`, when given, instead of the policy's)."""
    rule = rule or POLICY[action]
    principal = access.principal
    require_credentials(principal)
    if principal.api_key_id is not None:
        if principal.api_key_community != access.community_id:
            raise Forbidden("this API key belongs to another community")
        if rule.scope is None or rule.scope not in principal.scopes:
            raise Forbidden(f"this API key lacks the scope this needs ({rule.scope or 'n/a'})")
        return
    if principal.is_platform_admin:
        return
    if rule.platform_admin_only or rule.min_role is None:
        raise Forbidden("only platform admins may do this")
    if access.role is None:
        raise Forbidden("you have no role in this community")
    if access.role < rule.min_role:
        raise Forbidden(f"this needs the {rule.min_role.name.lower()} role")


async def access_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The one guard of the API: a route that names an action (`requires`) is refused with
    401/403 before its body is read; the caller's access is kept for the `access` dependency.

    The `{community_id}` of every community route is checked here, once: 401 still comes
    first, then an invalid id is a 400 (`InvalidCommunityId`), before it reaches a query."""
    action = handler.opt.get(GUARDED_ACTION)
    if action is None:
        if "community_id" in connection.path_params:
            validate_community_id(connection.path_params["community_id"])
        _validate_member_in_path(connection)
        return
    state = connection.app.state
    principal = known_principal(connection)
    if principal is None:
        principal = await resolve_principal(connection, state.tokens, provide_access_cache(state))
        remember_principal(connection, principal)
    audience_of = handler.opt.get(GUARDED_AUDIENCE)
    if handler.opt.get(GUARDED_COMPANY):
        require_credentials(principal)
        company_id = validate_company_id(connection.path_params["company_id"])
        access = await access_in_company(
            principal,
            company_id,
            provide_companies(state),
            provide_access_cache(state),
            state.get(WHOP_COMMUNITIES_STATE),
            provide_entitlements(state, state.downstream, state.settings),
        )
        permit_in_company(access, action)
    elif audience_of is not None:
        access = await _access_by_audience(connection, principal, action, audience_of)
    else:
        require_credentials(principal)
        community_id = validate_community_id(connection.path_params["community_id"])
        access = await access_in(
            principal,
            community_id,
            provide_access_cache(state),
            state.get(WHOP_COMMUNITIES_STATE),
        )
        permit(access, action)
    _validate_member_in_path(connection)
    connection.scope.setdefault("state", {})[_ACCESS_STATE_KEY] = access


def _validate_member_in_path(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A `{user_id}` in the path is a member id (after 401 and 403, like the community's)."""
    if "user_id" in connection.path_params:
        validate_member_id(connection.path_params["user_id"])


async def _access_by_audience(
    connection: ASGIConnection[Any, Any, Any, Any],
    principal: Principal,
    action: Action,
    audience_of: AudienceLookup,
) -> Access:
    raw_community_id = connection.path_params["community_id"]
    if principal.is_anonymous and not is_community_id(raw_community_id):
        require_credentials(principal)  # 401 before 400, as on every other route
    community_id = validate_community_id(raw_community_id)
    audience = await audience_of(connection, community_id)
    if audience is Audience.PUBLIC and principal.is_anonymous:
        return Access(principal, community_id, None, None)
    require_credentials(principal)
    state = connection.app.state
    access = await access_in(
        principal, community_id, provide_access_cache(state), state.get(WHOP_COMMUNITIES_STATE)
    )
    if audience is not Audience.PUBLIC:
        permit(access, action, _ADMINS_ONLY if audience is Audience.ADMINS else None)
    # On a public board anyone signed in reads it; their own entry shows where they are linked.
    return access


def provide_access(request: Request[Any, Any, Any]) -> Access:
    """The caller's access, as the guard computed it for this request."""
    access = request.scope.get("state", {}).get(_ACCESS_STATE_KEY)
    if not isinstance(access, Access):
        raise RuntimeError(f"{request.url.path}: the route names no action (`requires`)")
    return access
