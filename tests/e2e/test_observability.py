"""End to end: the six processes `make up` starts, with `WEE5_SENTRY_DSN` pointing at a local
stand-in for Sentry's ingest and `OTEL_EXPORTER_OTLP_ENDPOINT` at a local OTLP collector
stand-in (tests/support/observability.py).

A signed webhook is one trace across the gateway, xp (its RPC, its transaction, its outbox
relay) and rewards (its consumer), and the log lines of each process carry that trace id.
A failure in each process (its schema gone from under it, a real failure of a dependency
answering what the code never expects) reaches the ingest tagged and scrubbed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.gateway import bearer
from tests.support.observability import (
    OtlpCollector,
    ReceivedSpan,
    SentryIngest,
    otlp_collector,
    sentry_ingest,
)
from tests.support.stack import ROOT, SECRET, Stack, launch_stack, stack_env, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e

RELEASE = "e2e-obs-1"
ENVIRONMENT = "test"
EMAIL = "someone.private@example.com"
PASSWORD = "correct horse battery staple"
# A route of each service that reads its own tables (as a platform admin may).
READS = {
    "xp": "xp-config",
    "rewards": "reward-rules",
    "benchmarks": "benchmarks/settings",
    "resources": "resource-settings",
    "billing": "plan",
}


@dataclass
class Observed:
    stack: Stack
    ingest: SentryIngest
    collector: OtlpCollector


@pytest.fixture(scope="module")
def observed(
    test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    name = f"obs{time.monotonic_ns() % 10**8}"
    database = make_url(test_env["WEE5_DATABASE_URL"]).set(database=f"wee5_test_{name}")
    with sentry_ingest() as ingest, otlp_collector() as collector:
        tmp = tmp_path_factory.mktemp("obs")
        env = stack_env(
            test_env,
            tmp,
            WEE5_DATABASE_URL=database.render_as_string(hide_password=False),
            WEE5_REDIS_PREFIX=name,
            WEE5_EVENT_PREFIX=name,
            WEE5_SENTRY_DSN=ingest.dsn,
            WEE5_ENVIRONMENT=ENVIRONMENT,
            WEE5_RELEASE=RELEASE,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            # Spans leave every 100 ms instead of every 5 s: the test reads them sooner.
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        # Six processes starting with both SDKs, on a machine shared with other test runs.
        stack = launch_stack(env, tmp, ready_seconds=180)
        try:
            yield Observed(stack, ingest, collector)
        finally:
            stop_stack(stack)
            reset = subprocess.run(
                ["make", "-s", "reset"], cwd=ROOT, env=stack.env, capture_output=True, text=True
            )
            assert reset.returncode == 0, reset.stderr


def log_lines(stack: Stack) -> list[dict[str, Any]]:
    """The JSON lines the stack's processes wrote (after scripts/up.py's prefix)."""
    lines = []
    for line in stack.log.read_text(errors="replace").splitlines():
        _, _, rest = line.partition("| ")
        if rest.startswith("{"):
            try:
                lines.append(json.loads(rest))
            except json.JSONDecodeError:
                continue
    return lines


def test_one_webhook_is_one_trace_through_gateway_xp_and_rewards(
    observed: Observed, community_id: str
) -> None:
    collector = observed.collector
    body = json.dumps(chat_message_created(community_id, "user_traced")).encode()
    headers = sign_standard(SECRET, body, f"msg_{uuid.uuid4().hex}", int(time.time()))
    reply = httpx.post(
        f"{observed.stack.base_url}/webhooks/whop",
        content=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text

    request = collector.wait_for(
        lambda s: s.service == "wee5-gateway" and s.name == "POST /webhooks/whop"
    )
    trace_id = request.trace_id
    consumed = collector.wait_for(
        lambda s: s.trace_id == trace_id and s.name == "consume xp.awarded"
    )

    assert consumed.service == "wee5-rewards"
    # Each process exports its spans on its own schedule: rewards' consumer span can arrive
    # before xp's publish span, so wait for every span the trace must hold.
    expected = [
        ("wee5-gateway", "/wee5.xp.v1.XpService/RecordActivity"),
        ("wee5-xp", "/wee5.xp.v1.XpService/RecordActivity"),
        ("wee5-xp", "publish xp.awarded"),
    ]
    for service, name in expected:
        collector.wait_for(_span_of(trace_id, service, name))
    collector.wait_for(
        lambda s: (
            s.trace_id == trace_id
            and s.service == "wee5-xp"
            and s.name in ("transaction", "xp activity batch")
        )
    )
    # Each span but the request's has its parent in the trace: one tree, not pieces.
    spans = collector.closed_trace(trace_id)
    assert {s.service for s in spans} >= {"wee5-gateway", "wee5-xp", "wee5-rewards"}
    # And the log lines written for it carry its trace id, in every process it went through.
    logged = {
        line.get("service")
        for line in log_lines(observed.stack)
        if line.get("trace_id") == trace_id
    }
    assert logged >= {"gateway", "xp", "rewards"}


def _span_of(trace_id: str, service: str, name: str) -> Callable[[ReceivedSpan], bool]:
    return lambda s: s.trace_id == trace_id and s.service == service and s.name == name


def test_a_failure_in_every_process_reaches_sentry_scrubbed_and_tagged(
    observed: Observed, community_id: str
) -> None:
    stack, ingest = observed.stack, observed.ingest
    admin = bearer(GatewaySettings(), platform_admin=True)
    url = stack.env["WEE5_DATABASE_URL"]
    away: list[str] = []
    try:
        away += asyncio.run(_rename_schemas(url, list(READS), away=True))
        request_ids = {}
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            for service, path in READS.items():
                request_ids[service] = f"obs-{service}-{uuid.uuid4().hex[:8]}"
                reply = client.get(
                    f"/api/v1/communities/{community_id}/{path}",
                    headers={**admin, "x-request-id": request_ids[service]},
                )
                assert reply.status_code == 502, (service, reply.status_code, reply.text)
            # Last: without its own schema the gateway cannot even check an admin's token.
            away += asyncio.run(_rename_schemas(url, ["gateway"], away=True))
            request_ids["gateway"] = f"obs-gateway-{uuid.uuid4().hex[:8]}"
            reply = client.post(
                "/api/v1/auth/login",
                json={"email": EMAIL, "password": PASSWORD},
                headers={"x-request-id": request_ids["gateway"]},
            )
            assert reply.status_code == 500, reply.text

        for service in READS:
            event = _reported(ingest, service, request_ids[service])
            assert _tags(event)["community_id"] == community_id, service
            assert "UndefinedTable" in json.dumps(event["exception"]), service
            _assert_release_and_environment(event)
            # The gateway answered 502 for it: a 5xx answer, reported with the same ids.
            answered = _reported(ingest, "gateway", request_ids[service])
            assert _tags(answered)["community_id"] == community_id
        crashed = _reported(ingest, "gateway", request_ids["gateway"])
        assert "UndefinedTable" in json.dumps(crashed["exception"])
        _assert_release_and_environment(crashed)
    finally:
        asyncio.run(_rename_schemas(url, away, away=False))

    sent = b"".join(ingest.raw).decode(errors="replace")
    token = admin["Authorization"].removeprefix("Bearer ")
    for secret in (EMAIL, PASSWORD, token, SECRET, ingest.dsn):
        assert secret not in sent


def _reported(ingest: SentryIngest, service: str, request_id: str) -> dict[str, Any]:
    """The event `service` reported for the request `request_id`."""

    def matches(event: dict[str, Any]) -> bool:
        tags = _tags(event)
        return tags.get("service") == service and tags.get("request_id") == request_id

    return ingest.wait_for(matches)


def _tags(event: dict[str, Any]) -> dict[str, str]:
    tags = event.get("tags") or {}
    # The SDK sends tags as an object; older protocol versions as [key, value] pairs.
    return dict(tags) if isinstance(tags, dict) else {k: v for k, v in tags}


def _assert_release_and_environment(event: dict[str, Any]) -> None:
    assert event["release"] == RELEASE
    assert event["environment"] == ENVIRONMENT


async def _rename_schemas(url: str, schemas: list[str], *, away: bool) -> list[str]:
    """Takes each schema from under its service (its tables no longer found), or gives it
    back; returns the schemas."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for schema in schemas:
                old, new = (schema, f"{schema}_away") if away else (f"{schema}_away", schema)
                await connection.execute(text(f'ALTER SCHEMA "{old}" RENAME TO "{new}"'))
    finally:
        await engine.dispose()
    return schemas
