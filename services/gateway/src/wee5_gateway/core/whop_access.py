"""What Whop says a Whop user may do, and which experiences a company has.

`WhopApi` speaks Whop's REST API with the app's key (a timeout and a small retry on each call).
`WhopAccessLevels` caches access answers in Redis: fresh for `whop_access_cache_seconds`, and a
longer-lived stale copy that serves only while Whop is down. With neither, the caller gets 503
(`WhopAccessUnavailable`): Whop being down never grants anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal, cast

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.core.problems import ProblemError
from wee5_gateway.db.repository import WhopRepository
from wee5_kit.communities import is_community_id
from wee5_kit.logging import get_logger
from wee5_kit.provider_ids import path_segment
from wee5_kit.redis import Keys

log = get_logger("wee5.gateway.whop")

AccessLevel = Literal["admin", "customer", "no_access"]
ACCESS_LEVELS: frozenset[str] = frozenset({"admin", "customer", "no_access"})
_ATTEMPTS = 3
_RETRY_DELAY_SECONDS = 0.2
_MAX_PAGES = 50


class WhopUnavailable(Exception):
    """Whop did not answer usefully: a network error, a timeout or a 5xx (or 429)."""


class WhopRefused(Exception):
    """Whop answered with a 4xx: the key is wrong or lacks a permission, or the id is unknown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Whop answered {status}: {message}")
        self.status = status


class WhopAccessUnavailable(ProblemError):
    status = 503
    slug = "whop-access-unavailable"
    title = "Whop's access check is unavailable"


class WhopApi:
    """The calls the gateway makes to Whop's REST API v1."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str | None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    async def access_level(self, user_id: str, resource_id: str) -> AccessLevel:
        body = await self._get(f"/users/{path_segment(user_id)}/access/{path_segment(resource_id)}")
        level = body.get("access_level")
        if level not in ACCESS_LEVELS:
            raise WhopUnavailable(f"Whop's access answer has no known access_level: {level!r}")
        return cast(AccessLevel, level)

    async def company_of(self, experience_id: str) -> str:
        body = await self._get(f"/experiences/{path_segment(experience_id)}")
        company = body.get("company")
        if not isinstance(company, dict) or not isinstance(company.get("id"), str):
            raise WhopUnavailable("Whop's experience names no company")
        return str(company["id"])

    async def experiences(self, company_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every experience of the company, page by page (`page_info.end_cursor`); at most
        `_MAX_PAGES` pages, so a cursor that never ends cannot hold a request forever."""
        after: str | None = None
        for _ in range(_MAX_PAGES):
            params = {"company_id": company_id, **({"after": after} if after else {})}
            body = await self._get("/experiences", params)
            for experience in body.get("data") or []:
                if isinstance(experience, dict) and isinstance(experience.get("id"), str):
                    yield experience
            page_info = body.get("page_info") or {}
            after = page_info.get("end_cursor") if isinstance(page_info, dict) else None
            if not after:
                return
        log.warning("whop experiences cut short", company_id=company_id, pages=_MAX_PAGES)

    async def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if not self.api_key:
            raise WhopRefused(401, "WEE5_WHOP_API_KEY is not set")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                response = await self.client.get(
                    f"{self.base_url}{path}", params=params, headers=headers
                )
            except httpx.HTTPError as error:
                failure: str = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    return _json_object(response, path)
                if response.status_code < 500 and response.status_code != 429:
                    raise WhopRefused(response.status_code, _message(response))
                failure = f"HTTP {response.status_code}"
            if attempt < _ATTEMPTS:
                await asyncio.sleep(_RETRY_DELAY_SECONDS * attempt)
        log.warning("whop api unavailable", path=path.split("/")[1], error=failure)
        raise WhopUnavailable(failure)


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise WhopUnavailable(f"Whop answered {path} with no JSON object")
    return body


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message", "")) or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase


class WhopAccessLevels:
    """Whop's access answers, cached in Redis (fresh, and a stale copy for when Whop is down)."""

    def __init__(
        self, api: WhopApi, redis: Redis, keys: Keys, fresh_seconds: int, stale_seconds: int
    ) -> None:
        self.api = api
        self.redis = redis
        self.keys = keys
        self.fresh_seconds = fresh_seconds
        self.stale_seconds = max(stale_seconds, fresh_seconds)

    async def of(self, user_id: str, experience_id: str) -> AccessLevel:
        fresh_key = self.keys("whop", "access", user_id, experience_id)
        stale_key = self.keys("whop", "access-stale", user_id, experience_id)
        cached = await self._cached(fresh_key)
        if cached is not None:
            return cached
        try:
            level = await self.api.access_level(user_id, experience_id)
        except WhopRefused as error:
            log.warning("whop refused the access check", error=str(error))
            raise WhopAccessUnavailable(
                f"Whop refused WEE5's access check ({error}); check WEE5_WHOP_API_KEY"
            ) from None
        except WhopUnavailable:
            stale = await self._cached(stale_key)
            if stale is not None:
                return stale
            raise WhopAccessUnavailable(
                "Whop's access check is unavailable and there is no recent answer for you; "
                "try again shortly"
            ) from None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(fresh_key, level, ex=self.fresh_seconds)
                pipe.set(stale_key, level, ex=self.stale_seconds)
                await pipe.execute()
        except RedisError as error:
            log.warning("whop access cache write failed", error=str(error))
        return level

    async def _cached(self, key: str) -> AccessLevel | None:
        try:
            value = await self.redis.get(key)
        except RedisError as error:
            log.warning("whop access cache read failed", error=str(error))
            return None
        return cast(AccessLevel, value) if value in ACCESS_LEVELS else None


WhopRole = Literal["owner", "admin", "member"]


class WhopCommunities:
    """A Whop user's role in a community (from Whop's access check), and the communities of a
    company, learned from Whop the first time one of its admins arrives."""

    def __init__(
        self, api: WhopApi, levels: WhopAccessLevels, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.api = api
        self.levels = levels
        self.sessionmaker = sessionmaker

    async def role_of(self, user_id: str, community_id: str) -> WhopRole | None:
        """`customer` is a member, `admin` an admin (the company's owner when it was its first
        admin to arrive), `no_access` no role."""
        level = await self.levels.of(user_id, community_id)
        if level == "no_access":
            return None
        if level == "customer":
            return "member"
        company_id = await self.onboard(community_id)
        if company_id is None:
            # Whop confirmed the admin; who owns the company is settled on a later visit.
            return "admin"
        async with self.sessionmaker.begin() as session:
            owner = await WhopRepository(session).claim_owner(company_id, user_id)
        return "owner" if owner == user_id else "admin"

    async def onboard(self, community_id: str) -> str | None:
        """The community's company; the first time, every experience of that company becomes a
        known community (each starts on the free plan with the default XP rules, which is
        what billing and xp answer for a community they have nothing stored for). None when
        Whop cannot tell yet."""
        async with self.sessionmaker() as session:
            company_id = await WhopRepository(session).company_of(community_id)
        if company_id is not None:
            return company_id
        try:
            company_id = await self.api.company_of(community_id)
            experiences = {community_id: ""}
            async for experience in self.api.experiences(company_id):
                experiences[str(experience["id"])] = str(experience.get("name") or "")
        except (WhopUnavailable, WhopRefused) as error:
            log.warning("whop onboarding deferred", community_id=community_id, error=str(error))
            return None
        known = {
            experience_id: name
            for experience_id, name in experiences.items()
            if is_community_id(experience_id)
        }
        async with self.sessionmaker.begin() as session:
            await WhopRepository(session).add_experiences(company_id, known)
        log.info("whop company onboarded", company_id=company_id, communities=len(known))
        return company_id
