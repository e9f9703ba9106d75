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
from wee5_gateway.api.accounts.service import EMAIL_TAKEN
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.security import (
    AUDIENCE,
    ISSUER,
    AccessTokens,
    new_api_key,
    token_hash,
)
from wee5_gateway.db.models import ApiKey, AuditEntry, CommunityRole, RefreshToken, User

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
    # The answer does not say that an account has the email.
    assert "account with this email exists" not in problem["detail"]
    assert problem["detail"] == EMAIL_TAKEN


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


# Account management: the signed-in account's password, email, sessions and deletion.

NEW_PASSWORD = "another horse battery"


async def sign_in(client: Client, email: str, device: str) -> dict[str, Any]:
    """A new session of the account, from a device told apart by its user agent."""
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": device},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def login_status(client: Client, email: str, password: str) -> int:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


async def change_password(
    client: Client, grant: dict[str, Any], current: str, new: str
) -> httpx.Response:
    return await client.put(
        "/api/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer_header(grant["access_token"]),
    )


async def delete_me(client: Client, grant: dict[str, Any], password: str) -> httpx.Response:
    return await client.request(
        "DELETE",
        "/api/v1/me",
        json={"current_password": password},
        headers=bearer_header(grant["access_token"]),
    )


async def my_sessions(client: Client, grant: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/me/sessions", headers=bearer_header(grant["access_token"]))
    assert response.status_code == 200, response.text
    sessions: list[dict[str, Any]] = response.json()
    return sessions


async def test_password_change_signs_out_the_other_sessions_and_keeps_this_one(
    gateway: Client,
) -> None:
    email = new_email()
    phone = await register(gateway, email)
    laptop = await sign_in(gateway, email, "laptop")
    tablet = await sign_in(gateway, email, "tablet")
    # A session that has rotated since sign-in is signed out too, not only its first token.
    tablet_rotated = (await refresh(gateway, tablet["refresh_token"])).json()

    changed = await change_password(gateway, phone, PASSWORD, NEW_PASSWORD)

    assert changed.status_code == 204, changed.text
    assert_problem(await refresh(gateway, laptop["refresh_token"]), 401)
    assert_problem(await refresh(gateway, tablet_rotated["refresh_token"]), 401)
    assert (await refresh(gateway, phone["refresh_token"])).status_code == 200
    assert await login_status(gateway, email, PASSWORD) == 401
    assert await login_status(gateway, email, NEW_PASSWORD) == 200


async def test_wrong_current_password_is_403_and_changes_nothing(gateway: Client) -> None:
    email = new_email()
    phone = await register(gateway, email)
    laptop = await sign_in(gateway, email, "laptop")

    refused = await change_password(gateway, phone, "not the password", NEW_PASSWORD)

    assert assert_problem(refused, 403)["detail"] == "the current password is wrong"
    assert (await refresh(gateway, laptop["refresh_token"])).status_code == 200
    assert await login_status(gateway, email, PASSWORD) == 200
    assert await login_status(gateway, email, NEW_PASSWORD) == 401


async def test_new_password_must_follow_the_sign_up_rules(gateway: Client) -> None:
    email = new_email()
    grant = await register(gateway, email)

    refused = await change_password(gateway, grant, PASSWORD, "short")

    assert "new_password" in assert_problem(refused, 400)["detail"]
    assert await login_status(gateway, email, PASSWORD) == 200


async def test_password_checks_spend_the_sign_in_budget_per_ip(database_url: str) -> None:
    async with serve(accounts_settings(rate_limit_auth="3/minute")) as gateway:
        grant = await register(gateway, new_email())  # one of the three
        guesses = [
            await change_password(gateway, grant, f"guess {n}", NEW_PASSWORD) for n in range(3)
        ]
        # Reading the account is not a password check: it spends the read budget.
        me = await gateway.get("/api/v1/me", headers=bearer_header(grant["access_token"]))

    assert [guess.status_code for guess in guesses] == [403, 403, 429]
    assert me.status_code == 200


async def test_email_change_moves_sign_in_to_the_new_address(gateway: Client) -> None:
    old_email, new_address = new_email(), new_email()
    grant = await register(gateway, old_email)

    changed = await gateway.put(
        "/api/v1/me/email",
        json={"email": f" {new_address.upper()} ", "current_password": PASSWORD},
        headers=bearer_header(grant["access_token"]),
    )

    assert changed.status_code == 200, changed.text
    assert changed.json() == {**grant["account"], "email": new_address}
    assert await login_status(gateway, new_address, PASSWORD) == 200
    assert await login_status(gateway, old_email, PASSWORD) == 401


async def test_email_change_refuses_a_taken_address_a_malformed_one_and_a_wrong_password(
    gateway: Client,
) -> None:
    email, taken = new_email(), new_email()
    grant = await register(gateway, email)
    await register(gateway, taken)

    async def change_email(address: str, password: str = PASSWORD) -> httpx.Response:
        return await gateway.put(
            "/api/v1/me/email",
            json={"email": address, "current_password": password},
            headers=bearer_header(grant["access_token"]),
        )

    conflict = await change_email(taken.upper())
    malformed = await change_email("no-at-sign.example")
    wrong_password = await change_email(new_email(), "not the password")

    assert assert_problem(conflict, 409)["detail"] == EMAIL_TAKEN
    assert "email" in assert_problem(malformed, 400)["detail"]
    assert assert_problem(wrong_password, 403)["detail"] == "the current password is wrong"
    assert await login_status(gateway, email, PASSWORD) == 200


async def test_deleting_the_account_removes_its_roles_sessions_and_sign_in(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    email = new_email()
    grant = await register(gateway, email)
    account_id = uuid.UUID(grant["account"]["id"])
    other_session = await sign_in(gateway, email, "laptop")
    admin_community = f"exp_{uuid.uuid4().hex[:12]}"
    async with sessionmaker.begin() as session:
        session.add_all(
            [
                CommunityRole(
                    community_id=community_id,
                    account_id=account_id,
                    role="member",
                    member_user_id="user_ada",
                ),
                CommunityRole(community_id=admin_community, account_id=account_id, role="admin"),
            ]
        )

    refused = await delete_me(gateway, grant, "not the password")
    deleted = await delete_me(gateway, grant, PASSWORD)

    assert_problem(refused, 403)
    assert deleted.status_code == 204, deleted.text
    assert "max-age=0" in set_cookies(deleted)["wee5_refresh"]
    assert await login_status(gateway, email, PASSWORD) == 401
    assert_problem(await refresh(gateway, other_session["refresh_token"]), 401)
    me = await gateway.get("/api/v1/me", headers=bearer_header(grant["access_token"]))
    assert assert_problem(me, 401)["detail"] == "the account of this access token no longer exists"
    async with sessionmaker() as session:
        assert await session.get(User, account_id) is None
        roles = await session.scalars(
            select(CommunityRole).where(CommunityRole.account_id == account_id)
        )
        assert roles.all() == []
        tokens = await session.scalars(
            select(RefreshToken).where(RefreshToken.account_id == account_id)
        )
        assert tokens.all() == []
        audited = await session.scalars(
            select(AuditEntry).where(AuditEntry.target == f"account:{account_id}")
        )
        assert sorted(
            (entry.community_id, entry.action, entry.before) for entry in audited
        ) == sorted(
            [
                (community_id, "account.deleted", {"role": "member", "member_user_id": "user_ada"}),
                (admin_community, "account.deleted", {"role": "admin", "member_user_id": None}),
            ]
        )


async def test_the_only_owner_of_a_community_cannot_delete_the_account(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    email = new_email()
    grant = await register(gateway, email)
    account_id = uuid.UUID(grant["account"]["id"])
    async with sessionmaker.begin() as session:
        session.add(CommunityRole(community_id=community_id, account_id=account_id, role="owner"))

    refused = await delete_me(gateway, grant, PASSWORD)

    assert community_id in assert_problem(refused, 409)["detail"]
    assert await login_status(gateway, email, PASSWORD) == 200


async def test_an_owner_with_a_co_owner_may_delete_the_account(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    grant = await register(gateway, new_email())
    account_id = uuid.UUID(grant["account"]["id"])
    co_owner = await new_account(sessionmaker, community_id, "owner")
    async with sessionmaker.begin() as session:
        session.add(CommunityRole(community_id=community_id, account_id=account_id, role="owner"))

    deleted = await delete_me(gateway, grant, PASSWORD)

    assert deleted.status_code == 204, deleted.text
    async with sessionmaker() as session:
        owners = await session.scalars(
            select(CommunityRole.account_id).where(CommunityRole.community_id == community_id)
        )
        assert owners.all() == [co_owner]


async def test_session_list_shows_each_sign_in_and_marks_the_current_one(
    gateway: Client,
) -> None:
    email = new_email()
    await register(gateway, email)
    phone = await sign_in(gateway, email, "phone")
    laptop = await sign_in(gateway, email, "laptop")
    # The phone refreshes: same session, later activity, and its new access token still
    # names the session.
    phone = (
        await gateway.post(
            "/api/v1/auth/refresh",
            json={"refresh_token": phone["refresh_token"]},
            headers={"User-Agent": "phone"},
        )
    ).json()

    sessions = await my_sessions(gateway, phone)

    by_agent = {session["user_agent"]: session for session in sessions}
    assert len(sessions) == 3
    assert sessions[0]["user_agent"] == "phone"  # latest activity first
    assert [session["current"] for session in sessions] == [True, False, False]
    assert by_agent["phone"]["last_used_at"] > by_agent["phone"]["started_at"]
    assert by_agent["laptop"]["last_used_at"] == by_agent["laptop"]["started_at"]
    assert all(session["client_ip"] == "127.0.0.1" for session in sessions)
    laptop_view = await my_sessions(gateway, laptop)
    assert [s["current"] for s in laptop_view if s["user_agent"] == "laptop"] == [True]
    assert {s["id"] for s in laptop_view} == {s["id"] for s in sessions}


async def test_revoking_a_session_signs_it_out_and_drops_it_from_the_list(
    gateway: Client,
) -> None:
    email = new_email()
    await register(gateway, email)
    phone = await sign_in(gateway, email, "phone")
    laptop = await sign_in(gateway, email, "laptop")
    phone_session = next(
        s["id"] for s in await my_sessions(gateway, laptop) if s["user_agent"] == "phone"
    )

    revoked = await gateway.delete(
        f"/api/v1/me/sessions/{phone_session}", headers=bearer_header(laptop["access_token"])
    )
    again = await gateway.delete(
        f"/api/v1/me/sessions/{phone_session}", headers=bearer_header(laptop["access_token"])
    )

    assert revoked.status_code == 204, revoked.text
    assert again.status_code == 204, again.text
    assert_problem(await refresh(gateway, phone["refresh_token"]), 401)
    assert (await refresh(gateway, laptop["refresh_token"])).status_code == 200
    assert phone_session not in {s["id"] for s in await my_sessions(gateway, laptop)}


async def test_another_accounts_session_cannot_be_revoked(gateway: Client) -> None:
    mine = await register(gateway, new_email())
    theirs = await register(gateway, new_email())
    their_session = (await my_sessions(gateway, theirs))[0]["id"]

    foreign = await gateway.delete(
        f"/api/v1/me/sessions/{their_session}", headers=bearer_header(mine["access_token"])
    )
    unknown = await gateway.delete(
        f"/api/v1/me/sessions/{uuid.uuid4()}", headers=bearer_header(mine["access_token"])
    )

    assert_problem(foreign, 404)
    assert_problem(unknown, 404)
    assert (await refresh(gateway, theirs["refresh_token"])).status_code == 200


async def test_revoking_the_other_sessions_keeps_only_the_current_one(gateway: Client) -> None:
    email = new_email()
    phone = await register(gateway, email)
    laptop = await sign_in(gateway, email, "laptop")
    tablet = await sign_in(gateway, email, "tablet")

    revoked = await gateway.post(
        "/api/v1/me/sessions/revoke-others", headers=bearer_header(tablet["access_token"])
    )

    assert revoked.status_code == 204, revoked.text
    assert_problem(await refresh(gateway, phone["refresh_token"]), 401)
    assert_problem(await refresh(gateway, laptop["refresh_token"]), 401)
    assert [s["user_agent"] for s in await my_sessions(gateway, tablet)] == ["tablet"]


async def test_access_token_of_a_revoked_session_works_until_it_expires(gateway: Client) -> None:
    # Documented: access tokens are signed, not looked up; signing out stops refreshes.
    email = new_email()
    phone = await register(gateway, email)
    laptop = await sign_in(gateway, email, "laptop")
    await gateway.post(
        "/api/v1/me/sessions/revoke-others", headers=bearer_header(laptop["access_token"])
    )

    me = await gateway.get("/api/v1/me", headers=bearer_header(phone["access_token"]))

    assert me.status_code == 200
    assert_problem(await refresh(gateway, phone["refresh_token"]), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/me/sessions"),
        ("POST", "/api/v1/me/sessions/revoke-others"),
        ("DELETE", f"/api/v1/me/sessions/{uuid.uuid4()}"),
        ("PUT", "/api/v1/me/password"),
        ("PUT", "/api/v1/me/email"),
        ("DELETE", "/api/v1/me"),
    ],
)
async def test_account_routes_need_an_account_not_an_api_key_or_nobody(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], method: str, path: str
) -> None:
    api_key = new_api_key()
    async with sessionmaker.begin() as session:
        session.add(
            ApiKey(
                community_id="exp_keys",
                name="bot",
                prefix=api_key[:14],
                key_hash=token_hash(api_key),
                scopes=["xp:read", "xp:admin"],
            )
        )
    # An empty body would be a 400 for an account: the caller is checked before the body.
    with_key = await gateway.request(method, path, json={}, headers=bearer_header(api_key))
    anonymous = await gateway.request(method, path, json={})

    assert_problem(with_key, 401)
    assert_problem(anonymous, 401)


async def test_two_co_owners_deleting_at_once_leave_the_community_an_owner(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    owners = [await register(gateway, new_email()) for _ in range(2)]
    async with sessionmaker.begin() as session:
        session.add_all(
            CommunityRole(
                community_id=community_id, account_id=uuid.UUID(o["account"]["id"]), role="owner"
            )
            for o in owners
        )

    answers = await asyncio.gather(*(delete_me(gateway, owner, PASSWORD) for owner in owners))

    assert sorted(answer.status_code for answer in answers) == [204, 409]
    async with sessionmaker() as session:
        left = await session.scalars(
            select(CommunityRole.role).where(CommunityRole.community_id == community_id)
        )
        assert left.all() == ["owner"]


async def test_a_browser_changing_its_password_stays_signed_in_on_its_cookies(
    database_url: str,
) -> None:
    async with serve(accounts_settings(cookie_secure=False)) as browser:
        email = new_email()
        other = await register(browser, email)
        await browser.post(
            "/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Use-Cookies": "true"},
        )

        changed = await browser.put(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        rotated = await browser.post("/api/v1/auth/refresh")
        sessions = await browser.get("/api/v1/me/sessions")
        other_refresh = await refresh(browser, other["refresh_token"])

    assert changed.status_code == 204, changed.text
    assert rotated.status_code == 200, rotated.text
    assert [session["current"] for session in sessions.json()] == [True]
    assert_problem(other_refresh, 401)
