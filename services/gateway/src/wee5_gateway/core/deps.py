"""What every controller shares: the community path prefix, the credentials routes document,
and the types of the dependencies the app provides (`create_app` registers the providers).

A handler names what it needs by parameter name and one of these types, e.g.
`downstream: DownstreamDep`, `access: AccessDep`, `audit: AuditorDep`.
"""

from __future__ import annotations

from typing import Any, cast

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Access, provide_access
from wee5_gateway.core.access_cache import AccessCache, provide_access_cache
from wee5_gateway.core.audit import Auditor, provide_auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import Entitlements, provide_entitlements
from wee5_gateway.core.openapi import API_KEY_AUTH, BEARER_AUTH, COOKIE_AUTH
from wee5_kit.events import EventBus

COMMUNITY = "/api/v1/communities/{community_id:str}"

# The credentials a route documents (each route's summary says which roles or scopes).
ACCOUNTS: list[dict[str, list[str]]] = [{BEARER_AUTH: []}, {COOKIE_AUTH: []}]
ACCOUNTS_OR_KEYS: list[dict[str, list[str]]] = [*ACCOUNTS, {API_KEY_AUTH: []}]
API_KEYS: list[dict[str, list[str]]] = [{API_KEY_AUTH: []}]

Sessions = async_sessionmaker[AsyncSession]
SessionsDep = NamedDependency[Sessions]
EngineDep = NamedDependency[AsyncEngine]
DownstreamDep = NamedDependency[Downstream]
SettingsDep = NamedDependency[GatewaySettings]
AccessDep = NamedDependency[Access]
AuditorDep = NamedDependency[Auditor]
EntitlementsDep = NamedDependency[Entitlements]
AccessCacheDep = NamedDependency[AccessCache]


def _engine(state: State) -> AsyncEngine:
    return cast(AsyncEngine, state.engine)


def _sessionmaker(state: State) -> Sessions:
    return cast(Sessions, state.sessionmaker)


def _downstream(state: State) -> Downstream:
    return cast(Downstream, state.downstream)


def _bus(state: State) -> EventBus:
    return cast(EventBus, state.bus)


# The dependencies of resources the app opens at startup (`app.state`) and of each request.
STATE_DEPENDENCIES: dict[str, Any] = {
    "engine": Provide(_engine, sync_to_thread=False),
    "sessionmaker": Provide(_sessionmaker, sync_to_thread=False),
    "downstream": Provide(_downstream, sync_to_thread=False),
    "bus": Provide(_bus, sync_to_thread=False),
    "access": Provide(provide_access, sync_to_thread=False),
    "audit": Provide(provide_auditor, sync_to_thread=False),
    "entitlements": Provide(provide_entitlements, sync_to_thread=False),
    "access_cache": Provide(provide_access_cache, sync_to_thread=False),
}
