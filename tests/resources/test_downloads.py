"""Downloads: members need an active membership (xp's word), admins always get a link; every
member download is counted exactly, even when many race, and earns points once per member
and resource (`resources.downloaded` with first_by_member)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from nats.js.api import DeliverPolicy

from tests.resources.conftest import Community
from tests.support.gateway import new_account
from wee5.events.v1 import events_pb2
from wee5_kit.events import EventBus


async def _download(
    community: Community, resource_id: str, headers: dict[str, str], **extra: Any
) -> Any:
    return await community.lib.gateway.post(
        f"{community.base}/resources/{resource_id}/download", headers={**headers, **extra}
    )


async def _count(community: Community, resource_id: str) -> int:
    response = await community.lib.gateway.get(
        f"{community.base}/resources/{resource_id}", headers=community.admin_headers
    )
    count: int = response.json()["download_count"]
    return count


async def downloaded_events(
    bus: EventBus, community_id: str, expected: int
) -> list[events_pb2.ResourceDownloaded]:
    """The `resources.downloaded` events of one community, once `expected` of them arrived."""
    found: list[events_pb2.ResourceDownloaded] = []
    async with asyncio.timeout(20):
        while True:
            found.clear()
            subscription = await bus.js.subscribe(
                bus.subject("resources.downloaded"),
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
            )
            try:
                while True:
                    try:
                        message = await subscription.next_msg(timeout=0.5)
                    except TimeoutError:
                        break
                    event = events_pb2.ResourceDownloaded()
                    event.ParseFromString(message.data)
                    if event.meta.community_id == community_id:
                        found.append(event)
            finally:
                await subscription.unsubscribe()
            if len(found) >= expected:
                return found
            await asyncio.sleep(0.2)


async def test_member_without_membership_is_refused(community: Community) -> None:
    resource = await community.publish()
    stranger = await community.add_member(f"user_{uuid.uuid4().hex[:8]}", active=False)
    response = await _download(community, resource["id"], stranger)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "active membership" in response.json()["detail"]
    assert response.json()["type"] == "https://wee5.dev/problems/membership-required"
    assert await _count(community, resource["id"]) == 0


async def test_member_with_an_ended_membership_is_refused(community: Community) -> None:
    resource = await community.publish()
    user_id = f"user_{uuid.uuid4().hex[:8]}"
    headers = await community.add_member(user_id, active=False)
    await community.lib.memberships.set(community.id, user_id, "canceled", False)
    response = await _download(community, resource["id"], headers)
    assert response.status_code == 403
    assert "canceled" in response.json()["detail"]


async def test_member_without_a_linked_member_id_is_refused(community: Community) -> None:
    resource = await community.publish()
    account = await new_account(community.lib.sessions, community.id, "member")
    response = await _download(community, resource["id"], community.lib.as_account(account))
    assert response.status_code == 403
    assert "linked" in response.json()["detail"]


async def test_admin_always_gets_a_link_without_being_counted(community: Community) -> None:
    resource = await community.publish()
    response = await _download(community, resource["id"], community.admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["counted"] is False
    assert (await community.lib.files.get(response.json()["url"])).status_code == 200
    assert await _count(community, resource["id"]) == 0


async def test_unknown_resource_is_not_found(community: Community) -> None:
    response = await _download(community, str(uuid.uuid4()), community.member_headers)
    assert response.status_code == 404


async def test_concurrent_downloads_are_counted_exactly(community: Community) -> None:
    resource = await community.publish()
    members = [await community.add_member(f"user_{n}_{uuid.uuid4().hex[:6]}") for n in range(5)]
    rounds = 6
    responses = await asyncio.gather(
        *(
            _download(community, resource["id"], headers)
            for headers in members
            for _ in range(rounds)
        )
    )
    assert [r.status_code for r in responses] == [200] * len(members) * rounds
    assert await _count(community, resource["id"]) == len(members) * rounds
    # Exactly one first download per member, however the requests interleaved.
    assert sum(r.json()["first_by_member"] for r in responses) == len(members)


async def test_points_event_once_per_member_per_resource(community: Community) -> None:
    first = await community.publish(title="First")
    second = await community.publish(title="Second")
    other = await community.add_member(f"user_{uuid.uuid4().hex[:8]}")
    for resource_id, headers in (
        (first["id"], community.member_headers),
        (first["id"], community.member_headers),
        (second["id"], community.member_headers),
        (first["id"], other),
        (first["id"], community.member_headers),
    ):
        assert (await _download(community, resource_id, headers)).status_code == 200
    events = await downloaded_events(community.lib.bus, community.id, expected=5)
    assert len(events) == 5
    firsts = sorted((e.resource_id, e.user_id) for e in events if e.first_by_member)
    assert len(firsts) == 3  # member×first, member×second, other×first
    assert len(set(firsts)) == 3
    assert all(e.meta.event_id for e in events)
    assert len({e.meta.event_id for e in events}) == 5


async def test_retried_download_with_the_same_key_counts_once(community: Community) -> None:
    resource = await community.publish()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    replies = [
        await _download(community, resource["id"], community.member_headers, **key)
        for _ in range(3)
    ]
    assert [r.json()["counted"] for r in replies] == [True, False, False]
    assert all(r.json()["first_by_member"] for r in replies)
    assert await _count(community, resource["id"]) == 1
    other_key = {"Idempotency-Key": uuid.uuid4().hex}
    fresh = await _download(community, resource["id"], community.member_headers, **other_key)
    assert fresh.json()["counted"] is True
    assert fresh.json()["first_by_member"] is False
    assert await _count(community, resource["id"]) == 2


async def test_a_membership_that_ends_stops_downloads(community: Community) -> None:
    resource = await community.publish()
    assert (await _download(community, resource["id"], community.member_headers)).status_code == 200
    await community.lib.memberships.set(community.id, community.member_user_id, "expired", False)
    refused = await _download(community, resource["id"], community.member_headers)
    assert refused.status_code == 403
    assert "expired" in refused.json()["detail"]
    assert await _count(community, resource["id"]) == 1
