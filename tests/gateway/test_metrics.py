"""The gateway's and xp's Prometheus metrics move with real traffic: signed Whop deliveries
through the in-process gateway to a real xp server, then `/metrics` scraped over HTTP and
parsed by prometheus-client's parser."""

from __future__ import annotations

import httpx

from tests.gateway.test_webhooks import deliver, gateway, leaderboard, xp_addr
from tests.support.metrics import in_process_metrics_url, label_values, scrape, value
from tests.support.whop import chat_message_created, new_id, new_secret

__all__ = ["gateway", "xp_addr"]  # the fixtures these tests use

XP_SERVICE = "wee5.xp.v1.XpService"


async def test_webhooks_move_the_webhook_route_and_rpc_counters(
    gateway: httpx.AsyncClient, community_id: str
) -> None:
    url = in_process_metrics_url()
    before = await scrape(url)
    member = new_id("user")
    envelope = chat_message_created(community_id, member)

    statuses = [(await deliver(gateway, envelope)).json()["status"] for _ in range(2)]
    ignored = await deliver(
        gateway, chat_message_created(community_id, new_id("user"), type="payment.succeeded")
    )
    forged = await deliver(
        gateway, chat_message_created(community_id, new_id("user")), secret=new_secret()
    )
    await leaderboard(gateway, community_id)
    after = await scrape(url)

    assert statuses == ["awarded", "duplicate"]
    assert (ignored.status_code, forged.status_code) == (200, 401)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    webhooks = "wee5_webhooks_total"
    assert grew(webhooks, provider="whop", outcome="awarded") == 1
    assert grew(webhooks, provider="whop", outcome="duplicate") == 1
    assert grew(webhooks, provider="whop", outcome="ignored") == 1
    assert grew(webhooks, provider="whop", outcome="bad_signature") == 1
    # The award went to xp over gRPC: counted and timed there by method and code.
    assert grew("wee5_grpc_server_handled_total", grpc_service=XP_SERVICE, grpc_code="OK") >= 1
    assert (
        grew("wee5_grpc_server_handling_seconds_count", grpc_service=XP_SERVICE, grpc_code="OK")
        >= 1
    )
    # Routes by their path template, by status.
    requests = "wee5_http_requests_total"
    assert grew(requests, method="POST", path="/webhooks/whop", status_code="200") == 3
    assert grew(requests, method="POST", path="/webhooks/whop", status_code="401") == 1
    board = "/api/v1/communities/{community_id}/leaderboard"
    assert grew(requests, method="GET", path=board, status_code="200") == 1
    assert grew("wee5_http_request_duration_seconds_count", path=board) == 1
    # No id of a community or member is ever a label value.
    # No ids as labels (route templates such as `{user_id}` are fine).
    assert not any(
        community_id in label or member in label for (_, labels) in after for _, label in labels
    )
    # The pools of the gateway's and xp's connections, read as the scrape came.
    assert label_values(after, "wee5_db_pool_size_connections", "component") >= {"gateway", "xp"}
    assert label_values(after, "wee5_redis_pool_idle_connections", "component") >= {"gateway", "xp"}
