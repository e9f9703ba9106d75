"""Routes of sign-up, sign-in, token refresh, sign-out and the caller's own account (its roles,
password, email, sessions and deletion)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import FromPath, HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.api.accounts.schemas import (
    AccountDeletion,
    AccountView,
    Credentials,
    EmailChange,
    Me,
    PasswordChange,
    RefreshTokenBody,
    Registration,
    SessionView,
    TokenGrant,
)
from wee5_gateway.api.accounts.service import (
    ACCOUNT_GONE,
    AccountService,
    ClientInfo,
    RefreshRefused,
    signed_in_account,
)
from wee5_gateway.api.accounts.throttle import SignInThrottle
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import (
    ACCESS_COOKIE,
    Principal,
    known_principal,
    remember_principal,
    resolve_principal,
)
from wee5_gateway.core.access_cache import provide_access_cache
from wee5_gateway.core.deps import ACCOUNTS, SessionsDep, SettingsDep
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import Unauthenticated, problem_responses
from wee5_gateway.core.security import AccessTokens, InvalidToken, Passwords

REFRESH_COOKIE = "wee5_refresh"
# The refresh cookie goes only to the routes that take it, not with every API request.
REFRESH_COOKIE_PATH = "/api/v1/auth"

UseCookies = Annotated[
    bool,
    HeaderParameter(
        name="X-Use-Cookies",
        required=False,
        description="`true`: also set the tokens as httpOnly, SameSite=Strict cookies "
        f"(`{ACCESS_COOKIE}`, `{REFRESH_COOKIE}`), for browsers.",
    ),
]

_COOKIES_NOTE = (
    f"Browsers may send `X-Use-Cookies: true` to also receive the tokens as cookies: "
    f"`{ACCESS_COOKIE}` (httpOnly, SameSite=Strict, path `/`, lives as long as the access "
    f"token), which every route accepts in place of `Authorization: Bearer`, and "
    f"`{REFRESH_COOKIE}` (httpOnly, SameSite=Strict, path `{REFRESH_COOKIE_PATH}`, lives as "
    f"long as the refresh token). Both are Secure unless the gateway runs with "
    f"`WEE5_COOKIE_SECURE=false`."
)
_PRESENTED_TOKEN_NOTE = (
    f"The refresh token is taken from the body's `refresh_token`, or else from the "
    f"`{REFRESH_COOKIE}` cookie."
)


_ACCESS_TOKENS_NOTE = (
    "Access tokens already issued to signed-out sessions stay valid until they expire (at "
    "most 15 minutes): they are signed, not looked up."
)


@dataclass(frozen=True)
class CurrentSession:
    """The session the caller's access token was issued in; `id` is None for a token that
    names none (one issued before sessions were named)."""

    id: uuid.UUID | None


def provide_current_session(
    request: Request[Any, Any, Any], tokens: NamedDependency[AccessTokens]
) -> CurrentSession:
    # The principal dependency already accepted this token; only its session id is read here.
    header = request.headers.get("authorization")
    credential = header.partition(" ")[2].strip() if header else request.cookies.get(ACCESS_COOKIE)
    try:
        return CurrentSession(tokens.decode(credential or "").session_id)
    except InvalidToken:
        return CurrentSession(None)


async def account_required(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """The guard of the signed-in account's own routes: 401 for API keys and anonymous callers,
    before the body is read."""
    principal = known_principal(connection)
    if principal is None:
        state = connection.app.state
        principal = await resolve_principal(connection, state.tokens, provide_access_cache(state))
        remember_principal(connection, principal)
    signed_in_account(principal)


def provide_account_service(
    passwords: NamedDependency[Passwords],
    tokens: NamedDependency[AccessTokens],
    settings: SettingsDep,
) -> AccountService:
    return AccountService(passwords, tokens, timedelta(seconds=settings.refresh_token_ttl_seconds))


@dataclass
class _OptionalBodyOperation(Operation):
    """Litestar documents every request body as required; these routes also take none (the
    token then comes from the cookie)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


class AccountController(Controller):
    path = "/api/v1"
    tags = ["accounts"]
    dependencies = {
        "accounts": Provide(provide_account_service, sync_to_thread=False),
        "current_session": Provide(provide_current_session, sync_to_thread=False),
    }

    @post(
        "/auth/register",
        operation_id="register",
        response_description="The new account and the tokens of its first session",
        summary="Create an account and sign in",
        description=(
            "Creates an account with a password (stored as an argon2 hash) and starts a "
            "session: a 15-minute access token and a 7-day single-use refresh token. The email "
            "is trimmed and lower-cased. " + _COOKIES_NOTE
        ),
        status_code=201,
        responses=problem_responses(400, 409, 429),
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[
            Registration,
            body_example(
                {
                    "email": "owner@example.com",
                    "password": "correct horse battery staple",
                    "display_name": "Owner",
                }
            ),
        ],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
        use_cookies: UseCookies = False,
    ) -> Response[TokenGrant]:
        throttle = SignInThrottle.of(request)
        await throttle.register(data.email)
        async with sessionmaker.begin() as session:
            grant = await accounts.register(
                session, data.email, data.password, data.display_name, client_of(request)
            )
        device = throttle.device_cookie(data.email, settings)
        return _granted(grant, 201, settings, with_cookies=use_cookies, device=device)

    @post(
        "/auth/login",
        operation_id="login",
        response_description="The account and the tokens of a new session",
        summary="Sign in with email and password",
        description=(
            "Starts a new session: a 15-minute access token and a 7-day single-use refresh "
            "token. A wrong password and an unknown email get the same 401. " + _COOKIES_NOTE
        ),
        status_code=200,
        responses=problem_responses(400, 401, 429),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[
            Credentials,
            body_example(
                {"email": "owner@example.com", "password": "correct horse battery staple"}
            ),
        ],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
        use_cookies: UseCookies = False,
    ) -> Response[TokenGrant]:
        grant, device = await throttled_login(
            request, sessionmaker, accounts, settings, data.email, data.password
        )
        return _granted(grant, 200, settings, with_cookies=use_cookies, device=device)

    @post(
        "/auth/refresh",
        operation_id="refreshTokens",
        response_description="The account and the session's next tokens",
        operation_class=_OptionalBodyOperation,
        summary="Trade a refresh token for a new access token and refresh token",
        description=(
            "Refresh tokens are single use: each refresh spends the presented one and returns "
            "its successor. Presenting a spent token again signs its session out everywhere "
            "(every token descended from the same sign-in is revoked) and answers 401, as do "
            "expired, revoked and unknown tokens. "
            + _PRESENTED_TOKEN_NOTE
            + " Cookies are set again when the token came from the cookie or `X-Use-Cookies: "
            "true` is sent. " + _COOKIES_NOTE
        ),
        status_code=200,
        responses=problem_responses(400, 401, 429),
    )
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
        data: JSONBody[RefreshTokenBody | None] = None,
        use_cookies: UseCookies = False,
    ) -> Response[TokenGrant]:
        presented = data.refresh_token if data else None
        from_cookie = presented is None
        presented = presented or request.cookies.get(REFRESH_COOKIE)
        if not presented:
            raise Unauthenticated(
                f"send the refresh token as `refresh_token` or in the `{REFRESH_COOKIE}` cookie"
            )
        throttle = SignInThrottle.of(request)
        async with sessionmaker.begin() as session:
            outcome = await accounts.refresh(
                session, presented, client_of(request), before_spending=throttle.refresh
            )
        # Raised only now: a reused token's family revocation had to commit first.
        if isinstance(outcome, RefreshRefused):
            raise Unauthenticated(outcome.value)
        return _granted(outcome, 200, settings, with_cookies=use_cookies or from_cookie)

    @post(
        "/auth/logout",
        operation_id="logout",
        response_description="Signed out",
        operation_class=_OptionalBodyOperation,
        summary="Sign out: revoke the session of a refresh token",
        description=(
            "Revokes every refresh token of the presented token's session and clears the "
            "cookies. Access tokens already issued stay valid until they expire (at most 15 "
            "minutes). Succeeds also for unknown, spent or missing tokens. " + _PRESENTED_TOKEN_NOTE
        ),
        status_code=204,
        responses=problem_responses(400),
    )
    async def logout(
        self,
        request: Request[Any, Any, Any],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
        data: JSONBody[RefreshTokenBody | None] = None,
    ) -> Response[None]:
        presented = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
        if presented:
            async with sessionmaker.begin() as session:
                await accounts.logout(session, presented)
        return Response(None, status_code=204, cookies=cleared_cookies(settings))

    @get(
        "/me",
        operation_id="getMe",
        response_description="The account and its community roles",
        summary="The signed-in account and its roles in communities",
        description=(
            "Needs an account's access token (bearer header or the `wee5_access` cookie); "
            "API keys have no account and get 401."
        ),
        security=ACCOUNTS,
        guards=[account_required],
        responses=problem_responses(401),
    )
    async def me(
        self,
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> Me:
        account_id = signed_in_account(principal)
        async with sessionmaker() as session:
            me = await accounts.me(session, account_id)
        if me is None:
            raise Unauthenticated(ACCOUNT_GONE)
        return me

    @put(
        "/me/password",
        operation_id="changeMyPassword",
        summary="Change the signed-in account's password",
        description=(
            "Needs the current password (a wrong one is 403, rate limited per IP like sign-in); "
            "the new one follows the rules of sign-up. Every other session of the account is "
            "signed out (its refresh token answers 401); the session of this access token stays. "
            + _ACCESS_TOKENS_NOTE
        ),
        security=ACCOUNTS,
        guards=[account_required],
        status_code=204,
        responses=problem_responses(400, 401, 403),
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        current_session: NamedDependency[CurrentSession],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> None:
        account_id = signed_in_account(principal)
        async with sessionmaker.begin() as session:
            await accounts.change_password(
                session, account_id, data.current_password, data.new_password, current_session.id
            )

    @put(
        "/me/email",
        operation_id="changeMyEmail",
        response_description="The account with its new email",
        summary="Change the signed-in account's email",
        description=(
            "Needs the current password (a wrong one is 403, rate limited per IP like sign-in). "
            "The email is trimmed and lower-cased; one another account has is 409."
        ),
        security=ACCOUNTS,
        guards=[account_required],
        responses=problem_responses(400, 401, 403, 409),
    )
    async def change_email(
        self,
        data: JSONBody[EmailChange],
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> AccountView:
        account_id = signed_in_account(principal)
        async with sessionmaker.begin() as session:
            return await accounts.change_email(
                session, account_id, data.current_password, data.email
            )

    @delete(
        "/me",
        operation_id="deleteMe",
        summary="Delete the signed-in account",
        description=(
            "Needs the current password (a wrong one is 403, rate limited per IP like sign-in). "
            "The account's community roles, sessions and refresh tokens go with it, each role "
            "recorded in its community's audit log (`account.deleted`); its XP and history stay "
            "in the communities, no longer linked to an account. API keys it created belong to "
            "their community and stay. The only owner of a community gets 409 until another "
            "account is owner there. Clears the cookies. " + _ACCESS_TOKENS_NOTE
        ),
        security=ACCOUNTS,
        guards=[account_required],
        status_code=204,
        responses=problem_responses(400, 401, 403, 409),
    )
    async def delete_me(
        self,
        data: JSONBody[AccountDeletion],
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
    ) -> Response[None]:
        async with sessionmaker.begin() as session:
            await accounts.delete_account(session, principal, data.current_password)
        return Response(None, status_code=204, cookies=cleared_cookies(settings))

    @get(
        "/me/sessions",
        operation_id="listMySessions",
        response_description="The sessions that can still refresh, latest activity first",
        summary="The signed-in account's sessions",
        description=(
            "Every sign-in that can still refresh, with when it started, when it last got "
            "tokens, and the user agent and IP it last got them from. `current` marks the "
            "session of this access token."
        ),
        security=ACCOUNTS,
        guards=[account_required],
        responses=problem_responses(401),
    )
    async def list_sessions(
        self,
        principal: NamedDependency[Principal],
        current_session: NamedDependency[CurrentSession],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> list[SessionView]:
        account_id = signed_in_account(principal)
        async with sessionmaker() as session:
            return await accounts.sessions(session, account_id, current_session.id)

    @delete(
        "/me/sessions/{session_id:uuid}",
        operation_id="revokeMySession",
        summary="Sign out one of the signed-in account's sessions",
        description=(
            "Its refresh tokens are revoked. Another account's session, or an unknown id, is "
            "404. Revoking an already revoked session succeeds. " + _ACCESS_TOKENS_NOTE
        ),
        security=ACCOUNTS,
        guards=[account_required],
        status_code=204,
        responses=problem_responses(401, 404),
    )
    async def revoke_session(
        self,
        session_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> None:
        account_id = signed_in_account(principal)
        async with sessionmaker.begin() as session:
            await accounts.revoke_session(session, account_id, session_id)

    @post(
        "/me/sessions/revoke-others",
        operation_id="revokeMyOtherSessions",
        summary="Sign out every other session of the signed-in account",
        description=(
            "Revokes the refresh tokens of every session but the one of this access token. "
            + _ACCESS_TOKENS_NOTE
        ),
        security=ACCOUNTS,
        guards=[account_required],
        status_code=204,
        responses=problem_responses(401),
    )
    async def revoke_other_sessions(
        self,
        principal: NamedDependency[Principal],
        current_session: NamedDependency[CurrentSession],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
    ) -> None:
        account_id = signed_in_account(principal)
        async with sessionmaker.begin() as session:
            await accounts.revoke_other_sessions(session, account_id, current_session.id)


def client_of(request: Request[Any, Any, Any]) -> ClientInfo:
    return ClientInfo(
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )


async def throttled_login(
    request: Request[Any, Any, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    accounts: AccountService,
    settings: GatewaySettings,
    email: str,
    password: str,
) -> tuple[TokenGrant, Cookie]:
    """Sign-in with the per-email failure budget (api/accounts/throttle.py): refused while
    the email is over it, unless this browser signed in to it before; a wrong password
    spends it. Returns the grant and the cookie that marks this browser as known."""
    throttle = SignInThrottle.of(request)
    await throttle.before_login(request, email)
    try:
        async with sessionmaker.begin() as session:
            grant = await accounts.login(session, email, password, client_of(request))
    except Unauthenticated:
        await throttle.login_failed(email)
        raise
    return grant, throttle.device_cookie(email, settings)


def _granted(
    grant: TokenGrant,
    status: int,
    settings: GatewaySettings,
    *,
    with_cookies: bool,
    device: Cookie | None = None,
) -> Response[TokenGrant]:
    cookies = None
    if with_cookies:
        cookies = token_cookies(grant, settings) + ([device] if device is not None else [])
    return Response(grant, status_code=status, cookies=cookies)


def token_cookies(grant: TokenGrant, settings: GatewaySettings) -> list[Cookie]:
    return [
        _cookie(ACCESS_COOKIE, grant.access_token, "/", grant.expires_in, settings),
        _cookie(
            REFRESH_COOKIE,
            grant.refresh_token,
            REFRESH_COOKIE_PATH,
            grant.refresh_expires_in,
            settings,
        ),
    ]


def cleared_cookies(settings: GatewaySettings) -> list[Cookie]:
    return [
        _cookie(ACCESS_COOKIE, "", "/", 0, settings),
        _cookie(REFRESH_COOKIE, "", REFRESH_COOKIE_PATH, 0, settings),
    ]


def _cookie(key: str, value: str, path: str, max_age: int, settings: GatewaySettings) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=path,
        max_age=max_age,
        # An expiry in the past too, for clients that ignore Max-Age=0.
        expires=0 if max_age == 0 else None,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
