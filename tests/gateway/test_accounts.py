"""Accounts and sessions over HTTP against real Postgres: sign-up, sign-in, refresh-token
rotation with reuse detection, sign-out, cookies for browsers, and what /me accepts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import gateway_settings, new_account, serve
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.security import (
    AUDIENCE,
    ISSUER,
    AccessTokens,
    new_api_key,
    token_hash,
)
from wee5_gateway.db.models import ApiKey, CommunityRole, RefreshToken, User

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"
Client = httpx.AsyncClient


def accounts_settings(**overrides: Any) -> GatewaySettings:
    # No downstream service is needed: accounts live in the gateway's own schema. These tests
    # sign up and in far more often than a person would from one IP; rate limits have their
    # own tests.
    generous = {f"rate_limit_{kind}": "100000/minute" for kind in ("auth", "read", "write")}
    return gateway_settings(f"127.0.0.1:{free_port()}", **{**generous, **overrides})


@pytest.fixture
def settings(database_url: str) -> GatewaySettings:
    return accounts_settings()


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


def new_email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.test"


async def register(client: Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: Client, refresh_token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def bearer_header(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["instance"] == response.request.url.path
    return problem


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The Set-Cookie headers of a response by cookie name, attributes lower-cased."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = header.lower()
    return found


async def test_registered_account_signs_in_and_reads_itself_at_me(
    gateway: Client, settings: GatewaySettings
) -> None:
    email = new_email()

    registered = await gateway.post(
        "/api/v1/auth/register",
        json={"email": f"  {email.upper()} ", "password": PASSWORD, "display_name": " Ada "},
    )
    login = await gateway.post(
        "/api/v1/auth/login", json={"email": email.upper(), "password": PASSWORD}
    )
    me = await gateway.get("/api/v1/me", headers=bearer_header(login.json()["access_token"]))

    assert registered.status_code == 201, registered.text
    grant = registered.json()
    account = grant["account"]
    assert account == {
        "id": account["id"],
        "email": email,
        "display_name": "Ada",
        "is_platform_admin": False,
    }
    assert grant["token_type"] == "Bearer"
    assert grant["expires_in"] == settings.access_token_ttl_seconds == 15 * 60
    assert grant["refresh_expires_in"] == settings.refresh_token_ttl_seconds == 7 * 24 * 3600
    assert grant["access_token"]
    assert grant["refresh_token"]
    assert login.status_code == 200, login.text
    assert login.json()["account"] == account
    assert login.json()["refresh_token"] != grant["refresh_token"]
    assert me.status_code == 200, me.text
    assert me.json() == {"account": account, "roles": []}


async def test_me_lists_the_accounts_community_roles(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    email = new_email()
    grant = await register(gateway, email)
    account_id = uuid.UUID(grant["account"]["id"])
    other_community = f"exp_{uuid.uuid4().hex[:12]}"
    async with sessionmaker.begin() as session:
        session.add(
            CommunityRole(
                community_id=community_id,
                account_id=account_id,
                role="owner",
                member_user_id="user_ada",
            )
        )
        await session.flush()
        session.add(
            CommunityRole(community_id=other_community, account_id=account_id, role="member")
        )

    me = await gateway.get("/api/v1/me", headers=bearer_header(grant["access_token"]))

    assert me.status_code == 200, me.text
    assert sorted(me.json()["roles"], key=lambda r: r["role"]) == [
        {"community_id": other_community, "role": "member", "member_user_id": None},
        {"community_id": community_id, "role": "owner", "member_user_id": "user_ada"},
    ]


async def test_registering_a_taken_email_is_409_whatever_its_case(gateway: Client) -> None:
    email = new_email()
    await register(gateway, email)

    again = await gateway.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": "another password"}
    )

    problem = assert_problem(again, 409)
    assert problem["detail"] == "an account with this email exists"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ok@example.test", "password": "short"}, "password"),
        ({"email": "ok@example.test", "password": "x" * 257}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "two@at@example.test", "password": PASSWORD}, "email"),
        ({"email": "no spaces@example.test", "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
    ],
)
async def test_weak_password_or_malformed_email_is_400_naming_the_field(
    gateway: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await gateway.post("/api/v1/auth/register", json=body)

    problem = assert_problem(response, 400)
    # A constraint names the field as its key; a missing field is named in the message.
    assert [
        error["key"] == field or f"`{field}`" in error["message"] for error in problem["errors"]
    ] == [True]
    assert field in problem["detail"]
    if "email" in body:
        async with sessionmaker() as session:
            assert await session.scalar(select(User).where(User.email == body["email"])) is None


async def test_wrong_password_and_unknown_email_get_identical_401s(gateway: Client) -> None:
    email = new_email()
    await register(gateway, email)

    wrong_password = await gateway.post(
        "/api/v1/auth/login", json={"email": email, "password": "not the password"}
    )
    unknown_email = await gateway.post(
        "/api/v1/auth/login", json={"email": new_email(), "password": "not the password"}
    )

    assert_problem(wrong_password, 401)
    assert_problem(unknown_email, 401)
    assert wrong_password.content == unknown_email.content
    assert wrong_password.json()["detail"] == "the email or password is wrong"
    assert wrong_password.headers["www-authenticate"] == unknown_email.headers["www-authenticate"]


async def test_accounts_made_without_a_password_cannot_sign_in(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    account_id = await new_account(sessionmaker)  # its password hash is "!"

    response = await gateway.post(
        "/api/v1/auth/login", json={"email": f"{account_id.hex}@example.test", "password": "!"}
    )

    assert_problem(response, 401)


async def test_sign_in_upgrades_a_hash_made_with_weaker_parameters(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    email = new_email()
    grant = await register(gateway, email)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    async with sessionmaker.begin() as session:
        await session.execute(update(User).where(User.email == email).values(password_hash=weak))

    response = await gateway.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})

    assert response.status_code == 200, response.text
    async with sessionmaker() as session:
        stored = await session.scalar(
            select(User.password_hash).where(User.id == uuid.UUID(grant["account"]["id"]))
        )
    assert stored is not None
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_refresh_rotates_and_reusing_a_spent_token_revokes_the_whole_session(
    gateway: Client,
) -> None:
    first = (await register(gateway, new_email()))["refresh_token"]

    rotated = await refresh(gateway, first)
    replayed = await refresh(gateway, first)
    successor_after_replay = await refresh(gateway, rotated.json()["refresh_token"])

    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    me = await gateway.get("/api/v1/me", headers=bearer_header(rotated.json()["access_token"]))
    assert me.status_code == 200
    assert "already used" in assert_problem(replayed, 401)["detail"]
    assert "revoked" in assert_problem(successor_after_replay, 401)["detail"]


async def test_rotation_marks_the_spent_token_and_keeps_the_family(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = (await register(gateway, new_email()))["refresh_token"]

    second = (await refresh(gateway, first)).json()["refresh_token"]

    async with sessionmaker() as session:
        spent = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(first))
        )
        successor = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(second))
        )
    assert spent is not None
    assert successor is not None
    assert spent.used_at is not None
    assert successor.used_at is None
    assert successor.family_id == spent.family_id
    assert successor.revoked_at is None
    assert spent.revoked_at is None


async def test_concurrent_refreshes_with_one_token_let_exactly_one_through(
    gateway: Client,
) -> None:
    token = (await register(gateway, new_email()))["refresh_token"]

    responses = await asyncio.gather(*(refresh(gateway, token) for _ in range(5)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401, 401], [r.text for r in responses]


async def test_replay_racing_a_rotation_still_signs_out_every_token_of_the_session(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # The replay's revocation must also reach the successor the racing rotation inserts.
    for _ in range(5):
        spent = (await register(gateway, new_email()))["refresh_token"]
        current = (await refresh(gateway, spent)).json()["refresh_token"]

        rotation, replay = await asyncio.gather(refresh(gateway, current), refresh(gateway, spent))

        assert_problem(replay, 401)
        if rotation.status_code == 200:
            assert_problem(await refresh(gateway, rotation.json()["refresh_token"]), 401)
        async with sessionmaker() as session:
            live = await session.scalar(
                select(func.count())
                .select_from(RefreshToken)
                .where(
                    RefreshToken.family_id
                    == select(RefreshToken.family_id)
                    .where(RefreshToken.token_hash == token_hash(spent))
                    .scalar_subquery(),
                    RefreshToken.revoked_at.is_(None),
                )
            )
        assert live == 0


async def test_expired_refresh_token_is_401(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    token = (await register(gateway, new_email()))["refresh_token"]
    async with sessionmaker.begin() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    response = await refresh(gateway, token)

    assert "expired" in assert_problem(response, 401)["detail"]


async def test_refresh_tokens_expire_after_the_configured_lifetime(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with serve(accounts_settings(refresh_token_ttl_seconds=1)) as gateway:
        grant = await register(gateway, new_email())
        await asyncio.sleep(1.1)

        response = await refresh(gateway, grant["refresh_token"])

    assert grant["refresh_expires_in"] == 1
    assert_problem(response, 401)


async def test_unknown_or_missing_refresh_token_is_401(gateway: Client) -> None:
    unknown = await refresh(gateway, "not-a-token-we-issued")
    missing = await gateway.post("/api/v1/auth/refresh")

    assert_problem(unknown, 401)
    assert_problem(missing, 401)


def _signed(settings: GatewaySettings, **claims: Any) -> str:
    assert settings.jwt_secret is not None
    now = datetime.now(UTC)
    base = {
        "sub": str(uuid.uuid4()),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return jwt.encode({**base, **claims}, settings.jwt_secret.get_secret_value(), "HS256")


@pytest.mark.parametrize(
    "kind", ["forged", "expired", "wrong_audience", "wrong_issuer", "alg_none", "garbage"]
)
async def test_rejected_access_tokens_get_401_with_www_authenticate_on_me(
    gateway: Client, settings: GatewaySettings, kind: str
) -> None:
    grant = await register(gateway, new_email())
    account_id = grant["account"]["id"]
    assert settings.jwt_secret is not None
    now = datetime.now(UTC)
    tokens = {
        "forged": AccessTokens("another-secret-" * 4, timedelta(minutes=15)).issue(
            uuid.UUID(account_id), is_platform_admin=True
        )[0],
        "expired": AccessTokens(
            settings.jwt_secret.get_secret_value(), timedelta(seconds=-1)
        ).issue(uuid.UUID(account_id), is_platform_admin=False)[0],
        "wrong_audience": _signed(settings, sub=account_id, aud="another-api"),
        "wrong_issuer": _signed(settings, sub=account_id, iss="someone-else"),
        "alg_none": jwt.encode(
            {"sub": account_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now},
            key="",
            algorithm="none",
        ),
        "garbage": "definitely.not.ajwt",
    }

    response = await gateway.get("/api/v1/me", headers=bearer_header(tokens[kind]))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_me_needs_an_account_not_an_api_key_or_nobody(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    key = new_api_key()
    async with sessionmaker.begin() as session:
        session.add(
            ApiKey(
                community_id=community_id,
                name="bot",
                prefix=key[:14],
                key_hash=token_hash(key),
                scopes=["xp:read"],
            )
        )

    with_key = await gateway.get("/api/v1/me", headers={"X-API-Key": key})
    anonymous = await gateway.get("/api/v1/me")

    assert_problem(with_key, 401)
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


async def test_logout_revokes_the_session(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = (await register(gateway, new_email()))["refresh_token"]
    current = (await refresh(gateway, first)).json()["refresh_token"]

    logout = await gateway.post("/api/v1/auth/logout", json={"refresh_token": current})
    after = await refresh(gateway, current)

    assert logout.status_code == 204, logout.text
    assert_problem(after, 401)
    async with sessionmaker() as session:
        family = (
            await session.scalars(
                select(RefreshToken).where(
                    RefreshToken.family_id
                    == select(RefreshToken.family_id)
                    .where(RefreshToken.token_hash == token_hash(first))
                    .scalar_subquery()
                )
            )
        ).all()
    assert len(family) == 2
    assert all(token.revoked_at is not None for token in family)


async def test_logout_leaves_other_sessions_of_the_account_alone(gateway: Client) -> None:
    email = new_email()
    phone = (await register(gateway, email))["refresh_token"]
    laptop = (
        await gateway.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).json()["refresh_token"]

    await gateway.post("/api/v1/auth/logout", json={"refresh_token": phone})

    assert (await refresh(gateway, laptop)).status_code == 200


@pytest.mark.parametrize("body", [{"refresh_token": "never-issued"}, {}, None])
async def test_logout_is_idempotent_and_answers_204_for_any_token(
    gateway: Client, body: dict[str, str] | None
) -> None:
    response = await gateway.post("/api/v1/auth/logout", json=body)

    assert response.status_code == 204, response.text
    cleared = set_cookies(response)
    assert "max-age=0" in cleared["wee5_access"]
    assert "max-age=0" in cleared["wee5_refresh"]


async def test_tokens_come_as_cookies_only_when_asked(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": PASSWORD}
    )

    assert response.status_code == 201
    assert response.headers.get_list("set-cookie") == []


@pytest.mark.parametrize("secure", [True, False])
async def test_sign_in_with_cookie_flag_sets_httponly_strict_cookies(
    database_url: str, secure: bool
) -> None:
    async with serve(accounts_settings(cookie_secure=secure)) as gateway:
        email = new_email()
        await register(gateway, email)

        response = await gateway.post(
            "/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Use-Cookies": "true"},
        )

    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    access, refresh_cookie = cookies["wee5_access"], cookies["wee5_refresh"]
    assert access.startswith(f"wee5_access={response.json()['access_token'].lower()};")
    assert refresh_cookie.startswith(f"wee5_refresh={response.json()['refresh_token'].lower()};")
    for cookie in (access, refresh_cookie):
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert ("; secure" in cookie) is secure
    assert "path=/;" in access or access.endswith("path=/")
    assert "max-age=900" in access
    assert "path=/api/v1/auth" in refresh_cookie
    assert f"max-age={7 * 24 * 3600}" in refresh_cookie


async def test_browser_session_runs_on_cookies_alone(database_url: str) -> None:
    # Plain http in tests, so the client's cookie jar sends the cookies back.
    async with serve(accounts_settings(cookie_secure=False)) as browser:
        email = new_email()
        await register(browser, email)
        login = await browser.post(
            "/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Use-Cookies": "true"},
        )
        first_refresh = browser.cookies["wee5_refresh"]
        first_access = browser.cookies["wee5_access"]

        me = await browser.get("/api/v1/me")
        rotated = await browser.post("/api/v1/auth/refresh")
        me_after_rotation = await browser.get("/api/v1/me")
        replay_of_first = await refresh(browser, first_refresh)
        logout = await browser.post("/api/v1/auth/logout")
        me_after_logout = await browser.get("/api/v1/me")

    assert login.status_code == 200
    assert me.status_code == 200, me.text
    assert me.json()["account"]["email"] == email
    assert rotated.status_code == 200, rotated.text
    assert set(set_cookies(rotated)) == {"wee5_access", "wee5_refresh"}
    assert rotated.json()["refresh_token"] != first_refresh
    assert rotated.json()["access_token"] != first_access
    assert me_after_rotation.status_code == 200
    # The first cookie was spent by the rotation: replaying it ends the session.
    assert_problem(replay_of_first, 401)
    assert logout.status_code == 204
    assert_problem(me_after_logout, 401)
