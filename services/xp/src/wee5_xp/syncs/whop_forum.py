"""Whop's REST API as xp reads it, with `Authorization: Bearer <key>`: forum posts
(`GET {base}/forum_posts?experience_id=…`, pages `{"data": [...], "page_info": {"end_cursor",
…}}`, the next one with `after=<end_cursor>`; Whop has no forum-post webhook, hence the polling
sync) and users (`GET {base}/users/{id}`: `{id, username, name, profile_picture: {url}?}`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from wee5_kit.provider_ids import path_segment
from wee5_xp.profiles import ProfileFields, described
from wee5_xp.syncs.http import USER_AGENT, ProviderError, RetryPolicy

PAGE_SIZE = 50


class WhopUnauthorized(ProviderError):
    pass


@dataclass(frozen=True)
class ForumPost:
    id: str
    user_id: str
    created_at: datetime
    content_length: int


@dataclass(frozen=True)
class ForumPostPage:
    posts: list[ForumPost]
    end_cursor: str | None
    has_next_page: bool


class WhopClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not api_key:
            raise ValueError("a Whop API key is required")
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
        )

    async def __aenter__(self) -> WhopClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def forum_posts(self, experience_id: str, after: str | None = None) -> ForumPostPage:
        params: dict[str, str | int] = {"experience_id": experience_id, "first": self.page_size}
        if after:
            params["after"] = after
        request = self.http.build_request("GET", "/forum_posts", params=params)
        response = await self.retry.send(self.http, request)
        if response.status_code in (401, 403):
            raise WhopUnauthorized(
                f"Whop refused the API key ({response.status_code}); check WEE5_WHOP_API_KEY "
                "and its forum read permission"
            )
        if response.status_code != 200:
            raise ProviderError(
                f"Whop answered {response.status_code} for the forum posts of {experience_id}"
            )
        try:
            body = response.json()
            info = body.get("page_info") or {}
            posts = [_post(entry) for entry in body["data"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProviderError(f"Whop sent an unexpected forum_posts page: {error}") from None
        end_cursor = info.get("end_cursor") or None
        has_next = info.get("has_next_page")
        if has_next is None:
            has_next = bool(posts) and end_cursor is not None
        return ForumPostPage(posts, end_cursor, bool(has_next) and end_cursor is not None)

    async def user(self, user_id: str) -> ProfileFields:
        """How Whop describes a user; nothing known when Whop has no such user (404)."""
        request = self.http.build_request("GET", f"/users/{path_segment(user_id)}")
        response = await self.retry.send(self.http, request)
        if response.status_code in (401, 403):
            raise WhopUnauthorized(
                f"Whop refused the API key ({response.status_code}); check WEE5_WHOP_API_KEY "
                "and its user read permission"
            )
        if response.status_code == 404:
            return ProfileFields()
        if response.status_code != 200:
            raise ProviderError(f"Whop answered {response.status_code} for user {user_id}")
        try:
            body = response.json()
            picture = body.get("profile_picture") or {}
            return described(
                str(body.get("name") or ""),
                str(body.get("username") or ""),
                str(picture.get("url") or ""),
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise ProviderError(f"Whop sent an unexpected user: {error}") from None


def _post(entry: dict[str, Any]) -> ForumPost:
    return ForumPost(
        id=str(entry["id"]),
        user_id=str(entry["user"]["id"]),
        created_at=_timestamp(entry["created_at"]),
        content_length=len(entry.get("content") or ""),
    )


def _timestamp(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
