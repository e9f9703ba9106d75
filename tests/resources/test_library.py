"""The library as members and admins use it: filters, full-text search, sorting and cursor
pages; admin edits and deletion (removing the stored file too), each in the audit log; the
per-community switch and categories; download stats."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.resources.conftest import Community
from tests.resources.files import MP4, mp4_bytes
from wee5_gateway.db.models import AuditEntry


async def _list(community: Community, **params: Any) -> Any:
    response = await community.lib.gateway.get(
        f"{community.base}/resources", params=params, headers=community.member_headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _titles(community: Community, **params: Any) -> list[str]:
    return [item["title"] for item in (await _list(community, **params))["resources"]]


async def _audit(community: Community, action: str) -> list[AuditEntry]:
    async with community.lib.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.community_id == community.id, AuditEntry.action == action
            )
        )
        return list(rows)


async def _seed(community: Community) -> dict[str, dict[str, Any]]:
    made = {}
    for title, description, category, kind, featured, tags in (
        (
            "Cold outreach sequences",
            "Emails that book sales meetings",
            "Cold email",
            "template",
            True,
            ["outbound"],
        ),
        (
            "Support macros",
            "Replies for customer tickets",
            "Customer service",
            "sop",
            False,
            ["support"],
        ),
        (
            "Agency pricing playbook",
            "How agencies price retainers",
            "Agency growth",
            "playbook",
            True,
            ["pricing", "outbound"],
        ),
        ("Hiring operations", "Checklists for onboarding staff", "Operations", "sop", False, []),
    ):
        made[title] = await community.publish(
            title=title, description=description, category=category, type=kind,
            featured=featured, tags=tags,
        )  # fmt: skip
    return made


async def test_filters_by_category_type_featured_and_tag(community: Community) -> None:
    await _seed(community)
    assert await _titles(community, category="Customer service") == ["Support macros"]
    assert sorted(await _titles(community, type="sop")) == ["Hiring operations", "Support macros"]
    assert sorted(await _titles(community, featured="true")) == [
        "Agency pricing playbook",
        "Cold outreach sequences",
    ]
    assert sorted(await _titles(community, tag="Outbound")) == [
        "Agency pricing playbook",
        "Cold outreach sequences",
    ]
    assert await _titles(community, type="sop", featured="false", category="Operations") == [
        "Hiring operations"
    ]


async def test_full_text_search_over_title_and_description(community: Community) -> None:
    await _seed(community)
    # Stemming: "meeting" finds "meetings" in a description; "agencies" finds "agency".
    assert await _titles(community, q="meeting") == ["Cold outreach sequences"]
    assert await _titles(community, q="agencies") == ["Agency pricing playbook"]
    assert await _titles(community, q="onboarding checklist") == ["Hiring operations"]
    assert await _titles(community, q="nothing like this") == []
    ranked = await _titles(community, q="sales OR pricing", sort="relevance")
    assert set(ranked) == {"Cold outreach sequences", "Agency pricing playbook"}


async def test_sorting(community: Community) -> None:
    seeded = await _seed(community)
    assert await _titles(community, sort="title") == sorted(seeded)
    assert await _titles(community) == list(reversed(seeded))  # newest first
    popular = seeded["Support macros"]["id"]
    await community.lib.gateway.post(
        f"{community.base}/resources/{popular}/download", headers=community.member_headers
    )
    assert (await _titles(community, sort="downloads"))[0] == "Support macros"


async def test_cursor_pages_walk_every_resource_once(community: Community) -> None:
    seeded = await _seed(community)
    for sort in ("newest", "title", "downloads", "updated"):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await _list(community, **params)
            assert page["total_count"] == len(seeded)
            seen += [item["title"] for item in page["resources"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(seeded), sort
        assert len(seen) == len(seeded)


async def test_a_cursor_of_another_sort_or_garbage_is_a_bad_request(community: Community) -> None:
    await _seed(community)
    cursor = (await _list(community, limit=1))["next_cursor"]
    for params in ({"cursor": cursor, "sort": "title"}, {"cursor": "not-a-cursor"}):
        response = await community.lib.gateway.get(
            f"{community.base}/resources", params=params, headers=community.member_headers
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_admin_edits_only_the_fields_sent_and_it_is_audited(community: Community) -> None:
    resource = await community.publish(tags=["old"])
    response = await community.lib.gateway.patch(
        f"{community.base}/resources/{resource['id']}",
        json={"title": "Renamed", "featured": True, "tags": ["New", "fresh"]},
        headers=community.admin_headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["title"], updated["featured"], updated["tags"]) == (
        "Renamed",
        True,
        ["new", "fresh"],
    )
    assert updated["description"] == resource["description"]
    assert updated["category"] == resource["category"]
    [entry] = await _audit(community, "resource.updated")
    assert entry.before == {"title": resource["title"], "featured": False, "tags": ["old"]}
    assert entry.after == {"title": "Renamed", "featured": True, "tags": ["new", "fresh"]}
    assert entry.actor_account_id == community.admin


async def test_patch_with_invalid_values_is_refused(community: Community) -> None:
    resource = await community.publish()
    for body, status in (({}, 400), ({"type": "poem"}, 400), ({"category": "Nope"}, 400),
                         ({"storage_key": "x"}, 400), ({"title": ""}, 400)):  # fmt: skip
        response = await community.lib.gateway.patch(
            f"{community.base}/resources/{resource['id']}",
            json=body,
            headers=community.admin_headers,
        )
        assert response.status_code == status, (body, response.text)


async def test_delete_removes_the_row_and_the_stored_file(community: Community) -> None:
    resource = await community.publish()
    stored = list((community.lib.storage_dir / community.id).rglob("*.pdf"))
    assert len(stored) == 1
    response = await community.lib.gateway.delete(
        f"{community.base}/resources/{resource['id']}", headers=community.admin_headers
    )
    assert response.status_code == 204
    assert not stored[0].exists()
    gone = await community.lib.gateway.get(
        f"{community.base}/resources/{resource['id']}", headers=community.member_headers
    )
    assert gone.status_code == 404
    [entry] = await _audit(community, "resource.deleted")
    assert entry.before is not None
    assert entry.before["title"] == resource["title"]
    again = await community.lib.gateway.delete(
        f"{community.base}/resources/{resource['id']}", headers=community.admin_headers
    )
    assert again.status_code == 404


async def test_creation_is_audited(community: Community) -> None:
    resource = await community.publish(title="Audited")
    [entry] = await _audit(community, "resource.created")
    assert entry.target == f"resource:{resource['id']}"
    assert entry.after is not None
    assert entry.after["title"] == "Audited"


async def test_members_cannot_write(community: Community) -> None:
    resource = await community.publish()
    for method, path, body in (
        ("POST", "/resources/uploads", {"file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 9}),
        ("PATCH", f"/resources/{resource['id']}", {"title": "x"}),
        ("DELETE", f"/resources/{resource['id']}", None),
        ("GET", "/resources/stats", None),
        ("PATCH", "/resource-settings", {"enabled": False}),
    ):  # fmt: skip
        response = await community.lib.gateway.request(
            method, f"{community.base}{path}", json=body, headers=community.member_headers
        )
        assert response.status_code == 403, (method, path)


async def test_library_switched_off_refuses_reads_and_downloads(community: Community) -> None:
    resource = await community.publish()
    off = await community.lib.gateway.patch(
        f"{community.base}/resource-settings",
        json={"enabled": False},
        headers=community.admin_headers,
    )
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    for method, path in (
        ("GET", "/resources"),
        ("GET", f"/resources/{resource['id']}"),
        ("POST", f"/resources/{resource['id']}/download"),
    ):
        response = await community.lib.gateway.request(
            method, f"{community.base}{path}", headers=community.member_headers
        )
        assert response.status_code == 409, (method, path)
        assert "turned off" in response.json()["detail"]
    settings = await community.lib.gateway.get(
        f"{community.base}/resource-settings", headers=community.member_headers
    )
    assert settings.json()["enabled"] is False
    [entry] = await _audit(community, "resource_settings.changed")
    assert entry.before is not None
    assert entry.before["enabled"] is True
    on = await community.lib.gateway.patch(
        f"{community.base}/resource-settings",
        json={"enabled": True},
        headers=community.admin_headers,
    )
    assert on.json()["enabled"] is True
    assert (await _list(community))["total_count"] == 1


async def test_categories_are_configurable_per_community(community: Community) -> None:
    defaults = await community.lib.gateway.get(
        f"{community.base}/resource-settings", headers=community.member_headers
    )
    assert defaults.json()["categories"] == [
        "Cold email", "Sales/GTM", "Customer service", "Operations", "Agency growth",
    ]  # fmt: skip
    changed = await community.lib.gateway.patch(
        f"{community.base}/resource-settings",
        json={"categories": ["Scripts", "Videos"]},
        headers=community.admin_headers,
    )
    assert changed.json()["categories"] == ["Scripts", "Videos"]
    resource = await community.publish(category="Scripts")
    assert resource["category"] == "Scripts"
    duplicate = await community.lib.gateway.patch(
        f"{community.base}/resource-settings",
        json={"categories": ["Scripts", "scripts"]},
        headers=community.admin_headers,
    )
    assert duplicate.status_code == 400


async def test_stats_show_downloads_over_time_top_resources_and_who(community: Community) -> None:
    popular = await community.publish(title="Popular")
    quiet = await community.publish(content=mp4_bytes(20_000), content_type=MP4,
                                     file_name="v.mp4", title="Quiet", type="video")  # fmt: skip
    other = f"user_{uuid.uuid4().hex[:8]}"
    other_headers = await community.add_member(other)
    for resource, headers in (
        (popular, community.member_headers),
        (popular, other_headers),
        (popular, community.member_headers),
        (quiet, other_headers),
    ):
        reply = await community.lib.gateway.post(
            f"{community.base}/resources/{resource['id']}/download", headers=headers
        )
        assert reply.status_code == 200
    response = await community.lib.gateway.get(
        f"{community.base}/resources/stats", params={"limit": 3}, headers=community.admin_headers
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["total_downloads"] == 4
    assert stats["unique_downloaders"] == 2
    today = datetime.now(UTC).date().isoformat()
    assert {"day": today, "downloads": 4} in stats["per_day"]
    assert sum(day["downloads"] for day in stats["per_day"]) == 4
    assert len(stats["per_day"]) in (30, 31)  # every day of the window, zeros included
    assert [(t["title"], t["downloads"]) for t in stats["top_resources"]] == [
        ("Popular", 3),
        ("Quiet", 1),
    ]
    assert [d["user_id"] for d in stats["downloads"]] == [other, community.member_user_id, other]
    assert stats["downloads"][0]["resource_id"] == quiet["id"]
    rest = await community.lib.gateway.get(
        f"{community.base}/resources/stats",
        params={"limit": 3, "cursor": stats["next_cursor"]},
        headers=community.admin_headers,
    )
    assert [d["user_id"] for d in rest.json()["downloads"]] == [community.member_user_id]
    assert rest.json()["next_cursor"] is None

    one = await community.lib.gateway.get(
        f"{community.base}/resources/stats",
        params={"resource_id": quiet["id"]},
        headers=community.admin_headers,
    )
    assert one.json()["total_downloads"] == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    bad = await community.lib.gateway.get(
        f"{community.base}/resources/stats",
        params={"since": future, "until": datetime.now(UTC).isoformat()},
        headers=community.admin_headers,
    )
    assert bad.status_code == 400


def _token(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_forged_cursors_are_bad_requests_not_errors(community: Community) -> None:
    await _seed(community)
    some_id = str(uuid.uuid4())
    for sort, payload in (
        ("newest", ["created_at", "2020-01-01T00:00:00", some_id]),  # no zone
        ("newest", ["created_at", 5, some_id]),
        ("downloads", ["download_count", 2**70, some_id]),
        ("downloads", ["download_count", -1, some_id]),
        ("downloads", ["download_count", 1, "not-a-uuid"]),
        ("title", ["title", ["a"], some_id]),
        ("relevance", ["relevance", 2**70]),
        ("newest", {"not": "an array"}),
    ):
        response = await community.lib.gateway.get(
            f"{community.base}/resources",
            params={"sort": sort, "q": "sales", "cursor": _token(payload)},
            headers=community.member_headers,
        )
        assert response.status_code == 400, (payload, response.text)
    for download_payload in ([0], ["1"], [2**70], [1, 2]):
        response = await community.lib.gateway.get(
            f"{community.base}/resources/stats",
            params={"cursor": _token(download_payload)},
            headers=community.admin_headers,
        )
        assert response.status_code == 400, (download_payload, response.text)


async def test_nul_characters_are_bad_requests_not_errors(community: Community) -> None:
    resource = await community.publish()
    for params in ({"q": "a\x00b"}, {"category": "x\x00"}, {"tag": "t\x00"}):
        response = await community.lib.gateway.get(
            f"{community.base}/resources", params=params, headers=community.member_headers
        )
        assert response.status_code == 400, params
    for body in ({"title": "a\x00"}, {"description": "\x00"}):
        response = await community.lib.gateway.patch(
            f"{community.base}/resources/{resource['id']}",
            json=body,
            headers=community.admin_headers,
        )
        assert response.status_code == 400, body
    settings = await community.lib.gateway.patch(
        f"{community.base}/resource-settings",
        json={"categories": ["ok", "bad\x00"]},
        headers=community.admin_headers,
    )
    assert settings.status_code == 400
    early = await community.lib.gateway.get(
        f"{community.base}/resources/stats",
        params={"until": "0001-01-02T00:00:00Z"},
        headers=community.admin_headers,
    )
    assert early.status_code == 400


async def test_concurrent_first_settings_updates_both_apply(community: Community) -> None:
    replies = await asyncio.gather(
        community.lib.gateway.patch(
            f"{community.base}/resource-settings",
            json={"categories": ["Scripts"]},
            headers=community.admin_headers,
        ),
        community.lib.gateway.patch(
            f"{community.base}/resource-settings",
            json={"enabled": False},
            headers=community.admin_headers,
        ),
    )
    assert [reply.status_code for reply in replies] == [200, 200]
    settings = await community.lib.gateway.get(
        f"{community.base}/resource-settings", headers=community.member_headers
    )
    assert settings.json()["categories"] == ["Scripts"]
    assert settings.json()["enabled"] is False


@pytest.mark.parametrize(
    ("name", "moment"),
    [("since", "0001-01-01T00:00:00+01:00"), ("until", "0001-01-01T00:30:00+01:00")],
)
async def test_stats_outside_the_years_a_timestamp_holds_are_400_naming_the_parameter(
    community: Community, name: str, moment: str
) -> None:
    reply = await community.lib.gateway.get(
        f"{community.base}/resources/stats", params={name: moment}, headers=community.admin_headers
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["detail"] == f"{name} must be a time between the years 1 and 9999"


async def test_put_replaces_both_library_settings_and_is_audited(community: Community) -> None:
    replaced = await community.lib.gateway.put(
        f"{community.base}/resource-settings",
        json={"enabled": False, "categories": ["Scripts"]},
        headers=community.admin_headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["enabled"], replaced.json()["categories"]) == (False, ["Scripts"])
    [entry] = await _audit(community, "resource_settings.changed")
    assert entry.after is not None
    assert entry.after["categories"] == ["Scripts"]
    partial = await community.lib.gateway.put(
        f"{community.base}/resource-settings",
        json={"enabled": True},
        headers=community.admin_headers,
    )
    assert partial.status_code == 400
    assert "categories" in partial.json()["detail"]


async def test_an_unknown_resource_type_is_400_listing_the_allowed_types(
    community: Community,
) -> None:
    body = {"storage_key": "k", "title": "t", "category": "Operations", "type": "pdf"}
    created = await community.lib.gateway.post(
        f"{community.base}/resources", json=body, headers=community.admin_headers
    )
    listed = await community.lib.gateway.get(
        f"{community.base}/resources", params={"type": "pdf"}, headers=community.member_headers
    )

    for response in (created, listed):
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["type"] == "https://wee5.dev/problems/invalid-request"
        assert "allowed: 'course', 'playbook', 'sop', 'template', 'video'" in problem["detail"]
        assert problem["errors"][0]["allowed"] == ["course", "playbook", "sop", "template", "video"]
