"""The gateway under abuse: rate limits (real Redis), body size limit, security headers, CORS
and gzip. Each test counts in a Redis prefix of its own, so no two share a budget."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import SECRET, bearer, gateway_settings, serve
from tests.support.whop import new_id, sign_standard
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.protection import rate_limits
from wee5_gateway.core.protection.rate_limits import (
    MAX_LEASE,
    Budget,
    RateLimits,
    RouteClass,
    Verdict,
)
from wee5_gateway.core.security import new_api_key, token_hash
from wee5_gateway.db.models import ApiKey

Client = httpx.AsyncClient
PROBLEM = "application/problem+json"
LOGIN = "/api/v1/auth/login"
RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
Serve = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def serve_with(test_env: dict[str, str], database_url: str, redis: Redis) -> Serve:
    """The gateway with these settings, counting under a Redis prefix of this test's own (below
    the run's prefix, which the `redis` fixture cleans up). xp is not running: these tests stop
    before any call to it, and a gRPC call fails fast if one is made."""
    prefix = f"{test_env['WEE5_REDIS_PREFIX']}:{uuid.uuid4().hex[:8]}"

    def start(**overrides: Any) -> AbstractAsyncContextManager[Client]:
        settings = gateway_settings(
            f"127.0.0.1:{free_port()}",
            redis_prefix=prefix,
            grpc_deadline_seconds=0.5,
            **overrides,
        )
        return serve(settings)

    return start


def sibling(client: Client, *, ip: str = "127.0.0.1", base_url: str | None = None) -> Client:
    """Another client of the same in-process app, whose requests come from `ip`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return Client(
        transport=httpx.ASGITransport(app=transport.app, client=(ip, 40000)),
        base_url=base_url or client.base_url,
    )


async def login(client: Client, email: str = "nobody@example.test") -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": "not-the-password-1"})


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    if slug:
        assert problem["type"].endswith(f"/{slug}")


def settings_for_tokens() -> GatewaySettings:
    return GatewaySettings()  # the run's WEE5_JWT_SECRET, as the served app has it


# Long enough that three sign-ins (password hashing included) fit in it on a busy machine.
WINDOW = 6


async def test_login_over_its_limit_answers_429_with_retry_after_then_recovers(
    serve_with: Serve,
) -> None:
    async with serve_with(rate_limit_auth=f"3/{WINDOW}second") as gateway:
        answers = [await login(gateway) for _ in range(3)]
        over = await login(gateway)

        assert [a.status_code for a in answers] == [401, 401, 401]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        assert_problem(over, 429, "rate-limited")
        retry_after = int(over.headers["retry-after"])
        assert 1 <= retry_after <= WINDOW
        assert over.headers["ratelimit-limit"] == "3"
        assert over.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(over.headers["ratelimit-reset"]) <= WINDOW

        # Retry-After is honest: waiting that long lets the next try through.
        await asyncio.sleep(retry_after + 0.1)
        recovered = await login(gateway)
        assert recovered.status_code == 401, recovered.text

        # Once the whole window has passed, the full limit is back.
        await asyncio.sleep(WINDOW + 0.1)
        fresh = await login(gateway)
        assert fresh.status_code == 401, fresh.text
        assert fresh.headers["ratelimit-remaining"] == "2"


async def test_each_client_ip_has_its_own_login_budget(serve_with: Serve) -> None:
    async with serve_with(rate_limit_auth="2/minute") as gateway:
        first, second = sibling(gateway, ip="203.0.113.7"), sibling(gateway, ip="198.51.100.9")
        async with first, second:
            for _ in range(2):
                await login(first)
            assert_problem(await login(first), 429)

            other_ip = await login(second)
            # Signing in with a credential does not buy a fresh budget either.
            same_ip_with_token = await first.post(
                LOGIN,
                json={"email": "a@example.test", "password": "x" * 12},
                headers=bearer(settings_for_tokens()),
            )

    assert other_ip.status_code == 401
    assert other_ip.headers["ratelimit-remaining"] == "1"
    assert_problem(same_ip_with_token, 429)


async def test_each_account_has_its_own_read_budget_apart_from_its_ip(serve_with: Serve) -> None:
    # A rank card: anonymous leaderboard reads spend the public-read budget instead.
    card = f"/api/v1/communities/exp_{uuid.uuid4().hex[:8]}/members/user_a"
    tokens = settings_for_tokens()
    alice, bob = bearer(tokens, uuid.uuid4()), bearer(tokens, uuid.uuid4())
    async with serve_with(rate_limit_read="2/minute") as gateway:
        alice_answers = [await gateway.get(card, headers=alice) for _ in range(3)]
        bob_answer = await gateway.get(card, headers=bob)
        anonymous_answer = await gateway.get(card)

    # Accounts without a role there get 403; the third of Alice's reads is over her budget.
    assert [a.status_code for a in alice_answers] == [403, 403, 429]
    assert bob_answer.status_code == 403
    assert bob_answer.headers["ratelimit-remaining"] == "1"
    assert anonymous_answer.status_code == 401
    assert anonymous_answer.headers["ratelimit-remaining"] == "1"


async def test_a_busy_account_gets_exactly_its_budget_counted_a_few_hits_at_a_time(
    serve_with: Serve,
) -> None:
    card = f"/api/v1/communities/exp_{uuid.uuid4().hex[:8]}/members/user_a"
    alice = bearer(settings_for_tokens(), uuid.uuid4())
    async with serve_with(rate_limit_read="100/minute") as gateway:
        answers = [await gateway.get(card, headers=alice) for _ in range(110)]

    statuses = [a.status_code for a in answers]
    assert statuses == [403] * 100 + [429] * 10
    remaining = [int(a.headers["ratelimit-remaining"]) for a in answers[:100]]
    assert remaining == list(range(99, -1, -1))


async def counted_at_once(limits: RateLimits, budget: Budget) -> tuple[Verdict | None, bool]:
    """`limits.hit(budget)`'s verdict, and whether it came without waiting for anything (the
    coroutine finished on its first step, as a request does that never leaves the event loop's
    turn)."""
    hit = limits.hit(budget)
    try:
        waiting_on = hit.send(None)
    except StopIteration as answered:
        return answered.value, True
    while True:  # it waits for Redis: let it go on as its task would
        if waiting_on is None:
            await asyncio.sleep(0)
        else:
            await asyncio.wait([waiting_on])
        try:
            waiting_on = hit.send(None)
        except StopIteration as answered:
            return answered.value, False


def read_budget(test_env: dict[str, str], limit: str) -> tuple[RateLimits, Budget]:
    """Rate limits of their own (a Redis prefix no other test uses), and an account's read
    budget under `limit`."""
    settings = gateway_settings(
        f"127.0.0.1:{free_port()}",
        redis_prefix=f"{test_env['WEE5_REDIS_PREFIX']}:{uuid.uuid4().hex[:8]}",
        rate_limit_read=limit,
    )
    return RateLimits(settings), Budget(RouteClass.READ, f"account:{uuid.uuid4()}")


async def test_a_busy_spender_never_waits_for_redis_once_counting_ahead(
    test_env: dict[str, str], redis: Redis
) -> None:
    limits, budget = read_budget(test_env, "100000/minute")
    answers = []
    try:
        for _ in range(640):
            answers.append(await counted_at_once(limits, budget))
            await asyncio.sleep(0.002)  # the next request comes a little later
    finally:
        await limits.close()

    # The first hits reserve in Redis while they wait; then the next hits are reserved in the
    # background while the last of the current ones are spent, so requests stop waiting (one
    # in 128 waited when a lease was renewed only once spent: 5 here, and the first two).
    waited = [n for n, (_, at_once) in enumerate(answers) if not at_once]
    assert 0 in waited
    assert len(waited) <= 3
    remaining = [verdict.remaining for verdict, _ in answers if verdict is not None]
    assert len(remaining) == 640
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] >= 100000 - 640 - 2 * MAX_LEASE


async def test_a_spender_of_a_hit_now_and_then_gets_all_of_its_budget(
    test_env: dict[str, str], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Leases a hundred times shorter, so hits 30 ms apart come as a hit every few seconds
    # would: each after the last lease ran out.
    monkeypatch.setattr(rate_limits, "LEASE_SECONDS", 0.01)
    limits, budget = read_budget(test_env, "200/minute")
    verdicts = []
    try:
        for _ in range(40):
            verdicts.append(await limits.hit(budget))
            await asyncio.sleep(0.03)
        counted = await limits.peek(budget)
    finally:
        await limits.close()

    # Nothing reserved ahead and left unspent: 40 hits cost 40 of the 200, not a share of
    # what was left each time.
    assert all(verdict is not None and verdict.allowed for verdict in verdicts)
    assert [verdict.remaining for verdict in verdicts if verdict] == list(range(199, 159, -1))
    assert counted is not None
    assert counted.remaining == 160


async def test_a_spenders_concurrent_requests_share_one_reservation(
    test_env: dict[str, str], redis: Redis
) -> None:
    limits, budget = read_budget(test_env, "600/minute")
    try:
        bursts = []
        for _ in range(3):
            bursts.append(await asyncio.gather(*(limits.hit(budget) for _ in range(32))))
            await asyncio.sleep(0.05)
        counted = await limits.peek(budget)
    finally:
        await limits.close()

    # Requests that come while the budget's next hits are being reserved wait for that
    # reservation: 96 hits cost the budget about 96, not an eighth of what was left apiece
    # (which left 2 of it). Reserved and not yet spent: at most a lease and its renewal, each
    # at most an eighth of what was left (how much of each depends on the spender's pace).
    assert all(verdict is not None and verdict.allowed for burst in bursts for verdict in burst)
    assert counted is not None
    assert 600 - 96 - 2 * (600 // 8) <= counted.remaining <= 600 - 96


async def test_made_up_credentials_spend_the_client_ips_budget(serve_with: Serve) -> None:
    # A rank card: anonymous leaderboard reads spend the public-read budget instead.
    card = f"/api/v1/communities/exp_{uuid.uuid4().hex[:8]}/members/user_a"
    async with serve_with(rate_limit_read="2/minute") as gateway:
        answers = [
            await gateway.get(card, headers={"Authorization": f"Bearer forged.{i}.token"})
            for i in range(3)
        ]
        made_up_keys = await gateway.get(card, headers={"X-API-Key": "wee5_sk_made_up"})

    assert [a.status_code for a in answers[:2]] == [401, 401]
    assert_problem(answers[2], 429)
    assert_problem(made_up_keys, 429)


async def test_each_api_key_has_its_own_activity_budget(
    serve_with: Serve, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    community = f"exp_{uuid.uuid4().hex[:8]}"
    first, second = await new_key(sessionmaker, community), await new_key(sessionmaker, community)
    intake = f"/api/v1/communities/{community}/activities"
    async with serve_with(rate_limit_activities="2/minute", rate_limit_write="100/minute") as g:
        # Invalid bodies answer 400 without calling xp; they still count.
        first_answers = [await g.post(intake, json={}, headers={"X-API-Key": first}) for _ in "abc"]
        second_answer = await g.post(intake, json={}, headers={"X-API-Key": second})

    assert [a.status_code for a in first_answers] == [400, 400, 429]
    assert first_answers[0].headers["ratelimit-limit"] == "2"
    assert second_answer.status_code == 400
    assert second_answer.headers["ratelimit-remaining"] == "1"


async def new_key(sessionmaker: async_sessionmaker[AsyncSession], community_id: str) -> str:
    secret = new_api_key()
    async with sessionmaker.begin() as session:
        session.add(
            ApiKey(
                community_id=community_id,
                name="protection",
                prefix=secret[:14],
                key_hash=token_hash(secret),
                scopes=["activities:write"],
            )
        )
    return secret


async def test_failed_webhook_signatures_are_throttled_per_ip_but_valid_ones_always_pass(
    serve_with: Serve,
) -> None:
    # An event type that earns nothing: the valid delivery is answered without calling xp.
    envelope = {"id": new_id("evt"), "type": "payment.succeeded", "data": {"id": new_id("pay")}}
    body = json.dumps(envelope).encode()
    async with serve_with(rate_limit_webhook_bad_signature="2/minute") as gateway:
        forged = [
            await gateway.post(
                "/webhooks/whop", content=body, headers=sign_standard("ws_wrong", body)
            )
            for _ in range(3)
        ]
        valid = [
            await gateway.post(
                "/webhooks/whop", content=body, headers=sign_standard(SECRET, body, new_id("msg"))
            )
            for _ in range(3)
        ]

    assert [f.status_code for f in forged] == [401, 401, 429]
    assert_problem(forged[2], 429, "rate-limited")
    assert int(forged[2].headers["retry-after"]) >= 1
    assert [v.status_code for v in valid] == [200, 200, 200], valid[0].text
    assert all(v.json() == {"status": "ignored"} for v in valid)


async def test_probes_and_the_openapi_document_are_not_rate_limited(serve_with: Serve) -> None:
    async with serve_with(rate_limit_read="1/minute") as gateway:
        answers = [await gateway.get(path) for path in ["/healthz"] * 3 + ["/schema/openapi.json"]]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert not any(h in a.headers for a in answers for h in RATE_LIMIT_HEADERS)


async def test_rate_limits_fail_open_when_redis_is_down(serve_with: Serve) -> None:
    async with serve_with(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit_auth="1/minute"
    ) as gateway:
        answers = [await login(gateway) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert not any("ratelimit-limit" in a.headers for a in answers)


async def test_oversize_body_answers_413_problem(serve_with: Serve) -> None:
    big = json.dumps({"email": "a@example.test", "password": "x" * 4096}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512  # no Content-Length: counted as it streams in

    async with serve_with(max_body_bytes=2048) as gateway:
        announced = await gateway.post(
            LOGIN, content=big, headers={"content-type": "application/json"}
        )
        streamed = await gateway.post(
            LOGIN, content=chunks(), headers={"content-type": "application/json"}
        )
        webhook = await gateway.post(
            "/webhooks/whop", content=big, headers=sign_standard(SECRET, big)
        )
        small = await login(gateway)

    for response in (announced, streamed, webhook):
        assert_problem(response, 413, "payload-too-large")
        assert "2048" in response.json()["detail"]
    assert small.status_code == 401


async def test_every_response_carries_the_security_headers(serve_with: Serve) -> None:
    async with serve_with() as gateway:
        answers = {
            "ok": await gateway.get("/healthz"),
            "unknown route": await gateway.get("/no-such-route"),
            "problem": await login(gateway),
            "schema": await gateway.get("/schema/openapi.json"),
        }
        docs = await gateway.get("/schema")

    for name, response in [*answers.items(), ("docs", docs)]:
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["x-frame-options"] == "DENY", name
        assert response.headers["referrer-policy"] == "no-referrer", name
        assert "strict-transport-security" not in response.headers, name  # plain http
    for name, response in answers.items():
        assert response.headers["content-security-policy"].startswith("default-src 'none'"), name
        assert "script-src" not in response.headers["content-security-policy"], name
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    docs_csp = docs.headers["content-security-policy"]
    assert "script-src 'self';" in docs_csp  # vendored scripts only, none inline
    assert "unsafe-inline" not in docs_csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in docs_csp


async def test_hsts_is_sent_on_https_requests(serve_with: Serve) -> None:
    async with serve_with() as gateway, sibling(gateway, base_url="https://gateway") as secure:
        response = await secure.get("/healthz")

    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_preflight_is_allowed_for_a_configured_origin_only(serve_with: Serve) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with serve_with(cors_origins="https://app.example.com") as gateway:
        allowed = await gateway.options(
            LOGIN, headers={**preflight, "Origin": "https://app.example.com"}
        )
        refused = await gateway.options(
            LOGIN, headers={**preflight, "Origin": "https://evil.example.net"}
        )
        simple = await gateway.get("/healthz", headers={"Origin": "https://app.example.com"})

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in refused.headers
    assert refused.status_code >= 400
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "ratelimit-remaining" in simple.headers["access-control-expose-headers"].lower()


async def test_no_origin_is_allowed_by_default(serve_with: Serve) -> None:
    async with serve_with() as gateway:
        preflight = await gateway.options(
            LOGIN,
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )

    assert "access-control-allow-origin" not in preflight.headers


async def test_large_responses_are_gzipped_when_the_client_accepts_it(serve_with: Serve) -> None:
    async with serve_with() as gateway:
        zipped = await gateway.get("/schema/openapi.json", headers={"Accept-Encoding": "gzip"})
        plain = await gateway.get("/schema/openapi.json", headers={"Accept-Encoding": "identity"})
        small = await gateway.get("/healthz", headers={"Accept-Encoding": "gzip"})
        raw = await gateway.send(
            gateway.build_request(
                "GET", "/schema/openapi.json", headers={"Accept-Encoding": "gzip"}
            ),
            stream=True,
        )
        compressed = b"".join([chunk async for chunk in raw.aiter_raw()])
        await raw.aclose()

    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.json() == plain.json()
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in small.headers  # under 1 KiB
    assert len(compressed) < len(plain.content) / 3
    assert json.loads(gzip.decompress(compressed)) == plain.json()


REGISTER = "/api/v1/auth/register"
REFRESH = "/api/v1/auth/refresh"
PASSWORD = "correct horse battery staple"


async def _registered(client: Client) -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.test"
    answer = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return email


def _from_ips(gateway: Client, count: int) -> list[Client]:
    return [sibling(gateway, ip=f"198.51.100.{n + 1}") for n in range(count)]


async def test_failed_sign_ins_to_one_email_are_limited_whatever_the_ip(
    serve_with: Serve,
) -> None:
    """Per IP only, an attacker with many addresses guessed one account's password without
    end: the failures per email have a budget of their own."""
    async with serve_with(rate_limit_login_failures_per_email="3/minute") as gateway:
        email = await _registered(gateway)
        clients = _from_ips(gateway, 5)
        guesses = [await login(client, email) for client in clients[:3]]
        over = await login(clients[3], email)
        right_password_new_device = await clients[4].post(
            LOGIN, json={"email": email, "password": PASSWORD}
        )
        other_email = await login(clients[3], "someone.else@example.test")
        for client in clients:
            await client.aclose()

    assert [g.status_code for g in guesses] == [401, 401, 401]
    assert_problem(over, 429, "rate-limited")
    assert "failed sign-ins to this email" in over.json()["detail"]
    assert over.headers["retry-after"]
    # Refused before the password is checked: the budget says nothing about the password.
    assert_problem(right_password_new_device, 429)
    assert other_email.status_code == 401


async def test_the_owner_still_signs_in_from_a_browser_that_signed_in_before(
    serve_with: Serve,
) -> None:
    """An attacker who spends a victim's budget locks out only the devices the victim never
    signed in from: a browser that signed in before carries a cookie that proves it."""
    # Plain http here: the cookie must not be Secure to come back.
    settings = {"rate_limit_login_failures_per_email": "2/minute", "cookie_secure": False}
    async with serve_with(**settings) as gateway:
        email = await _registered(gateway)
        other = await _registered(gateway)
        owner, attacker, elsewhere = _from_ips(gateway, 3)
        before = await owner.post(
            LOGIN, json={"email": email, "password": PASSWORD}, headers={"X-Use-Cookies": "true"}
        )
        assert before.status_code == 200, before.text
        device = owner.cookies.get("wee5_device")
        assert device
        assert "httponly" in before.headers["set-cookie"].lower()
        for _ in range(3):
            await login(attacker, email)
            await login(attacker, other)

        owner_again = await owner.post(LOGIN, json={"email": email, "password": PASSWORD})
        # The cookie names one email; it opens no other account's lock, nor is it forgeable.
        wrong_email = await owner.post(LOGIN, json={"email": other, "password": PASSWORD})
        elsewhere.cookies.set("wee5_device", device.split(".")[0] + ".forged")
        forged = await elsewhere.post(LOGIN, json={"email": email, "password": PASSWORD})
        for client in (owner, attacker, elsewhere):
            await client.aclose()

    assert owner_again.status_code == 200, owner_again.text
    assert_problem(wrong_email, 429)
    assert_problem(forged, 429)


async def test_correct_sign_ins_spend_no_failure_budget(serve_with: Serve) -> None:
    async with serve_with(rate_limit_login_failures_per_email="2/minute") as gateway:
        email = await _registered(gateway)
        answers = [
            await gateway.post(LOGIN, json={"email": email, "password": PASSWORD}) for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200] * 4


async def test_registering_one_email_is_limited_whatever_the_ip(serve_with: Serve) -> None:
    async with serve_with(rate_limit_register_per_email="2/minute") as gateway:
        email = f"{uuid.uuid4().hex[:10]}@example.test"
        clients = _from_ips(gateway, 3)
        answers = [
            await client.post(REGISTER, json={"email": email, "password": PASSWORD})
            for client in clients
        ]
        for client in clients:
            await client.aclose()
    assert [a.status_code for a in answers[:2]] == [201, 409]
    assert_problem(answers[2], 429)


async def test_refreshes_are_limited_per_account_and_a_refused_one_spends_nothing(
    serve_with: Serve,
) -> None:
    async with serve_with(rate_limit_refresh_per_account=f"2/{WINDOW}second") as gateway:
        email = await _registered(gateway)
        grant = (await gateway.post(LOGIN, json={"email": email, "password": PASSWORD})).json()
        token = grant["refresh_token"]
        for client in _from_ips(gateway, 2):
            async with client:
                answer = await client.post(REFRESH, json={"refresh_token": token})
                assert answer.status_code == 200, answer.text
                token = answer.json()["refresh_token"]
        refused = await gateway.post(REFRESH, json={"refresh_token": token})
        await asyncio.sleep(int(refused.headers["retry-after"]) + 0.1)
        # Not spent by the refusal: no reuse alarm, the session goes on.
        later = await gateway.post(REFRESH, json={"refresh_token": token})

    assert_problem(refused, 429)
    assert later.status_code == 200, later.text


async def test_a_json_route_refuses_a_body_that_is_not_json(serve_with: Serve) -> None:
    """A page on another site can send `text/plain` or a form without asking (no CORS
    preflight); such a body used to be read as JSON all the same."""
    body = json.dumps({"email": "nobody@example.test", "password": "not-the-password-1"})
    async with serve_with() as gateway:
        answers = {
            content_type: await gateway.post(
                LOGIN, content=body, headers={"content-type": content_type}
            )
            for content_type in (
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/json; charset=utf-8",
                "application/merge-patch+json",
            )
        }
        untyped = await gateway.post(LOGIN, content=body, headers={"content-type": ""})
        # A route whose body is optional still takes none, typed or not.
        no_body = await gateway.post(REFRESH)

    for refused in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        answer = next(a for t, a in answers.items() if t.startswith(refused))
        assert_problem(answer, 415, "unsupported-media-type")
        assert refused in answer.json()["detail"]
    assert answers["application/json; charset=utf-8"].status_code == 401
    assert answers["application/merge-patch+json"].status_code == 401
    assert_problem(untyped, 415)
    assert_problem(no_body, 401)


async def test_a_write_with_our_cookies_must_come_from_our_origin(serve_with: Serve) -> None:
    """SameSite=Strict keeps the cookies off other sites' requests in current browsers; the
    Origin check holds where it does not (older browsers, a sibling subdomain's page)."""
    async with serve_with(cookie_secure=False) as gateway:
        email = f"{uuid.uuid4().hex[:10]}@example.test"
        signed_up = await gateway.post(
            REGISTER,
            json={"email": email, "password": PASSWORD},
            headers={"X-Use-Cookies": "true"},
        )
        assert signed_up.status_code == 201, signed_up.text
        own = str(gateway.base_url).rstrip("/")

        async def refresh_with(headers: dict[str, str]) -> httpx.Response:
            return await gateway.post(REFRESH, headers=headers)

        foreign = await refresh_with({"Origin": "https://evil.example"})
        # A sandboxed page's opaque origin (and ours under no-referrer: see below).
        null_origin = await refresh_with({"Origin": "null", "Sec-Fetch-Site": "cross-site"})
        cross_site = await refresh_with({"Sec-Fetch-Site": "cross-site"})
        same_origin = await refresh_with({"Origin": own})
        # Our pages send Referrer-Policy: no-referrer: a browser then sends `Origin: null`
        # with their form posts.
        own_form = await refresh_with({"Origin": "null", "Sec-Fetch-Site": "same-origin"})
        assert own_form.status_code == 200, own_form.text
        same_origin_fetch = await refresh_with({"Sec-Fetch-Site": "same-origin"})
        # A bearer token is not something a browser adds on its own: no Origin check.
        token = same_origin_fetch.json()["access_token"]
        with_bearer = await gateway.post(
            "/api/v1/auth/logout", headers={"Origin": "https://evil.example", **bearer_of(token)}
        )

    for refused in (foreign, null_origin, cross_site):
        assert_problem(refused, 403, "cross-origin-write")
    assert same_origin.status_code == 200, same_origin.text
    assert same_origin_fetch.status_code == 200, same_origin_fetch.text
    assert with_bearer.status_code == 204, with_bearer.text


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
