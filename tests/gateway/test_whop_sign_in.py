"""Whop sign-in against the real gateway, xp and billing: tokens minted with the tests' own ES256
key, published as a JWKS by the local Whop stand-in, which also answers access checks and
experiences in Whop's formats."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import free_port
from tests.support.gateway import SECRET, bearer, gateway_settings, receipts_held, serve
from tests.support.whop import chat_message_created, sign_standard
from tests.support.whop_api import FakeWhop, serving
from tests.support.whop_tokens import APP_ID, WhopSigningKey, hs256_forged, whop_user
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core import whop_identity
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Client = httpx.AsyncClient
PROBLEM = "application/problem+json"
XP_RULES = {"message": {"min": 7, "max": 7}, "post": {"min": 5, "max": 9}, "reaction": {"min": 1, "max": 1}}  # fmt: skip


@pytest.fixture(scope="module")
async def services(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[dict[str, str]]:
    xp_addr, billing_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    xp = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0))
    billing = await build_billing(BillingSettings(billing_addr=billing_addr))
    await xp.start()
    await billing.start()
    yield {"xp_addr": xp_addr, "billing_addr": billing_addr}
    await billing.stop()
    await xp.stop()


@pytest.fixture
def signing_key() -> WhopSigningKey:
    return WhopSigningKey()


@pytest.fixture
async def whop(signing_key: WhopSigningKey) -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    fake.jwks = {"keys": [signing_key.jwk()]}
    async with serving(fake, "") as base_url:
        fake.base_url = base_url
        yield fake


def whop_settings(services: dict[str, str], whop: FakeWhop, **overrides: Any) -> GatewaySettings:
    return gateway_settings(
        services["xp_addr"],
        billing_addr=services["billing_addr"],
        **{
            "whop_app_id": APP_ID,
            "whop_jwks_url": f"{whop.base_url}/.well-known/jwks.json",
            "whop_api_url": f"{whop.base_url}/api/v1",
            "whop_api_key": whop.api_key,
            "public_url": "https://wee5.example.test",
            **overrides,
        },
    )


@pytest.fixture
def settings(services: dict[str, str], whop: FakeWhop) -> GatewaySettings:
    return whop_settings(services, whop)


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def xp(services: dict[str, str]) -> AsyncIterator[XpServiceAsyncStub]:
    async with channel(services["xp_addr"]) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)


def new_user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def message(
    xp: XpServiceAsyncStub, community_id: str, user_id: str, profile: xp_pb2.Profile | None = None
) -> None:
    await xp.RecordActivity(
        xp_pb2.RecordActivityRequest(
            activity=xp_pb2.Activity(
                community_id=community_id,
                user_id=user_id,
                kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                source=xp_pb2.SOURCE_API,
                idempotency_key=uuid.uuid4().hex,
                profile=profile,
            )
        )
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    return problem


async def test_a_customer_reads_their_own_card_and_the_board_with_no_account_and_no_link(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey, xp: XpServiceAsyncStub
) -> None:
    experience = whop.add_experience("biz_customers")
    customer = new_user()
    whop.access_levels[(customer, experience)] = "customer"
    avatar = "https://assets.whop.example/avatars/ada.png"
    profile = xp_pb2.Profile(display_name="Ada", username="ada", avatar_url=avatar)
    await message(xp, experience, customer, profile)
    headers = whop_user(signing_key.token(customer))

    card = await gateway.get(f"{base(experience)}/members/{customer}", headers=headers)
    assert card.status_code == 200, card.text
    assert card.json()["user_id"] == customer
    assert card.json()["xp"] > 0
    assert (card.json()["display_name"], card.json()["avatar_url"]) == ("Ada", avatar)
    board = await gateway.get(f"{base(experience)}/leaderboard", headers=headers)
    assert board.status_code == 200, board.text
    (entry,) = [e for e in board.json()["entries"] if e["user_id"] == customer]
    assert (entry["display_name"], entry["username"], entry["avatar_url"]) == ("Ada", "ada", avatar)
    # A member, not an admin.
    assert_problem(await gateway.get(f"{base(experience)}/xp-config", headers=headers), 403)


async def test_no_access_in_whop_is_403(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    experience = whop.add_experience("biz_closed")
    headers = whop_user(signing_key.token(new_user()))
    response = await gateway.get(f"{base(experience)}/leaderboard", headers=headers)
    assert_problem(response, 403)


async def test_an_admin_changes_the_xp_config_of_its_experience_and_not_another_companys(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey, settings: GatewaySettings
) -> None:
    ours, theirs = whop.add_experience("biz_ours"), whop.add_experience("biz_theirs")
    admin = new_user()
    whop.access_levels[(admin, ours)] = "admin"
    premium = await gateway.put(
        f"{base(ours)}/plan",
        json={"plan": "premium", "reason": "whop sign-in test"},
        headers=bearer(settings, platform_admin=True),
    )
    assert premium.status_code == 200, premium.text
    headers = whop_user(signing_key.token(admin))

    changed = await gateway.put(f"{base(ours)}/xp-config", json=XP_RULES, headers=headers)
    assert changed.status_code == 200, changed.text
    read = await gateway.get(f"{base(ours)}/xp-config", headers=headers)
    assert read.json()["message"] == {"min": 7, "max": 7}
    refused = await gateway.put(f"{base(theirs)}/xp-config", json=XP_RULES, headers=headers)
    assert_problem(refused, 403)


async def test_the_companys_first_admin_becomes_owner_and_a_second_only_admin(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    company = f"biz_{uuid.uuid4().hex[:10]}"
    chat, forum = whop.add_experience(company, "Chat"), whop.add_experience(company, "Forum")
    first, second = new_user(), new_user()
    for admin in (first, second):
        whop.access_levels[(admin, chat)] = "admin"
        whop.access_levels[(admin, forum)] = "admin"
    first_headers = whop_user(signing_key.token(first))
    second_headers = whop_user(signing_key.token(second))

    # The first admin opens WEE5; the owner routes (audit log) are theirs, in every experience
    # of the company.
    owner_read = await gateway.get(f"{base(chat)}/audit-log", headers=first_headers)
    assert owner_read.status_code == 200, owner_read.text
    in_forum = await gateway.get(f"{base(forum)}/audit-log", headers=first_headers)
    assert in_forum.status_code == 200, in_forum.text
    assert_problem(await gateway.get(f"{base(chat)}/audit-log", headers=second_headers), 403)
    admin_read = await gateway.get(f"{base(chat)}/roles", headers=second_headers)
    assert admin_read.status_code == 200, admin_read.text


async def test_of_two_admins_arriving_at_once_exactly_one_becomes_owner(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    chat = whop.add_experience(f"biz_{uuid.uuid4().hex[:10]}")
    admins = [new_user() for _ in range(4)]
    for admin in admins:
        whop.access_levels[(admin, chat)] = "admin"
    answers = await asyncio.gather(
        *(
            gateway.get(f"{base(chat)}/audit-log", headers=whop_user(signing_key.token(admin)))
            for admin in admins
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 403, 403, 403]


async def test_without_whops_api_key_a_whop_user_gets_503_not_access(
    services: dict[str, str], whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    chat = whop.add_experience("biz_no_key")
    customer = new_user()
    whop.access_levels[(customer, chat)] = "customer"
    async with serve(whop_settings(services, whop, whop_api_key=None)) as gateway:
        response = await gateway.get(
            f"{base(chat)}/leaderboard", headers=whop_user(signing_key.token(customer))
        )
    assert "WEE5_WHOP_API_KEY" in assert_problem(response, 503)["detail"]


async def test_setup_shows_an_admin_what_is_left_and_learns_the_companys_communities(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    company = f"biz_{uuid.uuid4().hex[:10]}"
    chat = whop.add_experience(company, "Chat")
    others = {whop.add_experience(company, f"Room {n}") for n in range(11)}  # two pages
    admin, customer = new_user(), new_user()
    whop.access_levels[(admin, chat)] = "admin"
    whop.access_levels[(customer, chat)] = "customer"

    response = await gateway.get(f"{base(chat)}/setup", headers=whop_user(signing_key.token(admin)))
    assert response.status_code == 200, response.text
    setup = response.json()
    assert setup["company_id"] == company
    assert set(setup["company_communities"]) == {chat, *others}
    assert setup["webhook_url"] == "https://wee5.example.test/webhooks/whop"
    assert setup["webhook_secret"]["ok"] is True
    assert setup["whop_api_key"] == {"ok": True, "detail": "Whop accepted the key"}
    assert setup["webhooks_received"] == 0
    assert setup["plan"] == "free"
    customer_headers = whop_user(signing_key.token(customer))
    assert_problem(await gateway.get(f"{base(chat)}/setup", headers=customer_headers), 403)


async def test_setup_counts_the_webhooks_received_for_the_community(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey, engine: AsyncEngine
) -> None:
    chat, elsewhere = whop.add_experience("biz_hooks"), whop.add_experience("biz_hooks")
    admin = new_user()
    whop.access_levels[(admin, chat)] = "admin"
    headers = whop_user(signing_key.token(admin))
    # Receipts are written behind the answers; held back here, the page waits for them
    # rather than counting too few.
    async with receipts_held(engine):
        for experience in (chat, chat, elsewhere):
            body = json.dumps(chat_message_created(experience, new_user())).encode()
            delivered = await gateway.post(
                "/webhooks/whop", content=body, headers=sign_standard(SECRET, body)
            )
            assert delivered.status_code == 200, delivered.text
        reading = asyncio.create_task(gateway.get(f"{base(chat)}/setup", headers=headers))
        done, _ = await asyncio.wait({reading}, timeout=0.5)
        assert not done

    assert (await reading).json()["webhooks_received"] == 2


async def test_setup_says_when_whops_api_key_is_refused(
    services: dict[str, str], whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    chat = whop.add_experience("biz_wrong_key")
    admin = new_user()
    whop.access_levels[(admin, chat)] = "admin"
    async with serve(whop_settings(services, whop)) as gateway:
        headers = whop_user(signing_key.token(admin))
        # The access answer is cached; then the key stops working.
        assert (await gateway.get(f"{base(chat)}/roles", headers=headers)).status_code == 200
        whop.api_key = "whop_rotated_key"
        setup = (await gateway.get(f"{base(chat)}/setup", headers=headers)).json()
    assert setup["whop_api_key"]["ok"] is False
    assert "401" in setup["whop_api_key"]["detail"]


def _bad_tokens(key: WhopSigningKey, user_id: str) -> dict[str, str]:
    stranger = WhopSigningKey()
    return {
        "expired": key.token(user_id, expires_in=-60),
        "wrong_audience": key.token(user_id, audience="app_someone_else"),
        "audience_list": key.token(user_id, audience=[APP_ID]),
        "wrong_issuer": key.token(user_id, issuer="urn:whopcom:someone"),
        "hs256_forged": hs256_forged(user_id, key.kid),
        "unknown_kid": stranger.token(user_id),
        "not_a_jwt": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "wrong_audience",
        "audience_list",
        "wrong_issuer",
        "hs256_forged",
        "unknown_kid",
        "not_a_jwt",
    ],
)
async def test_a_bad_whop_token_is_401(
    gateway: Client, whop: FakeWhop, signing_key: WhopSigningKey, kind: str
) -> None:
    experience = whop.add_experience("biz_bad_tokens")
    user = new_user()
    whop.access_levels[(user, experience)] = "customer"
    token = _bad_tokens(signing_key, user)[kind]
    response = await gateway.get(f"{base(experience)}/leaderboard", headers=whop_user(token))
    assert_problem(response, 401)
    # The same user with a good token is let in: the 401 is the token's.
    good = await gateway.get(
        f"{base(experience)}/leaderboard", headers=whop_user(signing_key.token(user))
    )
    assert good.status_code == 200, good.text


async def test_a_jwks_rotation_is_picked_up_without_a_restart(
    gateway: Client,
    whop: FakeWhop,
    signing_key: WhopSigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experience = whop.add_experience("biz_rotation")
    user = new_user()
    whop.access_levels[(user, experience)] = "customer"
    path = f"{base(experience)}/leaderboard"

    def jwks_fetches() -> int:
        return sum(1 for call in whop.calls if call.path == "/.well-known/jwks.json")

    assert (await gateway.get(path, headers=whop_user(signing_key.token(user)))).status_code == 200
    rotated = WhopSigningKey()
    whop.jwks = {"keys": [rotated.jwk()]}
    # Inside the refetch window (30 s) an unknown kid is refused without asking Whop again.
    fetched = jwks_fetches()
    assert_problem(await gateway.get(path, headers=whop_user(rotated.token(user))), 401)
    assert jwks_fetches() == fetched
    # The window passes (shortened here from 30 s, so the test need not wait it out).
    monkeypatch.setattr(whop_identity, "JWKS_REFETCH_SECONDS", 0.2)
    await asyncio.sleep(0.3)
    response = await gateway.get(path, headers=whop_user(rotated.token(user)))
    assert response.status_code == 200, response.text
    assert jwks_fetches() == fetched + 1


async def test_when_whop_is_down_a_cached_answer_serves_and_an_uncached_one_is_503(
    services: dict[str, str], whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    experience = whop.add_experience("biz_outage")
    known, unknown = new_user(), new_user()
    whop.access_levels[(known, experience)] = "customer"
    whop.access_levels[(unknown, experience)] = "customer"
    path = f"{base(experience)}/leaderboard"
    async with serve(whop_settings(services, whop, whop_access_cache_seconds=1)) as gateway:
        known_headers = whop_user(signing_key.token(known))
        assert (await gateway.get(path, headers=known_headers)).status_code == 200
        await asyncio.sleep(1.2)  # past the fresh answer: only the stale copy is left
        whop.down = True
        try:
            assert (await gateway.get(path, headers=known_headers)).status_code == 200
            response = await gateway.get(path, headers=whop_user(signing_key.token(unknown)))
        finally:
            whop.down = False
    problem = assert_problem(response, 503)
    assert problem["type"].endswith("/whop-access-unavailable")
    assert "Whop's access check is unavailable" in problem["title"]


async def test_a_fixed_public_key_verifies_tokens_without_a_jwks(
    services: dict[str, str], whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    experience = whop.add_experience("biz_fixed_key")
    user = new_user()
    whop.access_levels[(user, experience)] = "customer"
    settings = whop_settings(
        services,
        whop,
        whop_public_key=signing_key.public_pem(),
        whop_jwks_url=f"http://127.0.0.1:{free_port()}/nowhere",
    )
    async with serve(settings) as gateway:
        headers = whop_user(signing_key.token(user))
        response = await gateway.get(f"{base(experience)}/leaderboard", headers=headers)
        assert response.status_code == 200, response.text
        other_key = whop_user(WhopSigningKey().token(user))
        assert_problem(await gateway.get(f"{base(experience)}/leaderboard", headers=other_key), 401)


async def test_without_an_app_id_the_whop_header_is_ignored(
    services: dict[str, str], whop: FakeWhop, signing_key: WhopSigningKey
) -> None:
    experience = whop.add_experience("biz_off")
    user = new_user()
    whop.access_levels[(user, experience)] = "customer"
    async with serve(whop_settings(services, whop, whop_app_id=None)) as gateway:
        response = await gateway.get(
            f"{base(experience)}/leaderboard", headers=whop_user(signing_key.token(user))
        )
    problem = assert_problem(response, 401)
    assert problem["detail"] == "sign in, or send an API key"
    assert not [call for call in whop.calls if call.path.startswith("/api/v1/users")]


def test_a_fixed_key_that_is_not_a_pem_public_key_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="WEE5_WHOP_PUBLIC_KEY is not a PEM EC"):
        GatewaySettings(
            whop_public_key="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"
        )
