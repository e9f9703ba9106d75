"""Outside Whop (`/app`): the email sign-in, Sign in with Discord (see
`wee5_gateway.api.discord.sign_in`), and the list of the caller's communities with
links to their member and admin views. The sign-in is the JSON API's (same service, same
cookies); the pages add only the form around it."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_302_FOUND, HTTP_303_SEE_OTHER

from wee5_gateway.api.accounts.controller import (
    CurrentSession,
    cleared_cookies,
    client_of,
    provide_account_service,
    provide_current_session,
    throttled_login,
    token_cookies,
)
from wee5_gateway.api.accounts.service import AccountService
from wee5_gateway.api.discord.install import configured_client_id
from wee5_gateway.api.discord.sign_in import (
    CALLBACK_PATH,
    SIGN_IN_PATH,
    STATE_COOKIE,
    InvalidSignIn,
    SignInStates,
    authorize_url,
    community_roles,
    discord_user,
)
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Principal, require_credentials
from wee5_gateway.core.access_cache import provide_access_cache
from wee5_gateway.core.deps import DownstreamDep, EntitlementsDep, SessionsDep, SettingsDep
from wee5_gateway.core.problems import RateLimited, Unauthenticated
from wee5_gateway.web.company import administered_companies
from wee5_gateway.web.page import APP_PREFIX, Page
from wee5_kit.redis import Keys

HOME = APP_PREFIX + "/"


class SignInForm(msgspec.Struct):
    email: str = ""
    password: str = ""
    next: str = ""


Form = Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


def safe_next(target: str) -> str:
    """Where to go after signing in: a path of our own pages only (never another site)."""
    if target == APP_PREFIX or (target.startswith(APP_PREFIX + "/") and "\\" not in target):
        return target
    return HOME


def _sign_in_states(request: Request[Any, Any, Any], settings: GatewaySettings) -> SignInStates:
    return SignInStates(
        request.app.state.redis,
        Keys(settings.redis_prefix),
        settings.discord_install_ttl_seconds,
    )


def _discord_sign_in(settings: GatewaySettings, next_path: str) -> str | None:
    """The "Sign in with Discord" link, or None when Discord sign-in is not configured."""
    if not settings.discord_client_id:
        return None
    return SIGN_IN_PATH + "?" + urlencode({"next": safe_next(next_path)})


def _state_cookie(value: str, max_age: int, settings: GatewaySettings) -> Cookie:
    # Lax: the browser comes back from Discord by a top-level GET, on which Lax is sent.
    return Cookie(
        key=STATE_COOKIE,
        value=value,
        path=SIGN_IN_PATH,
        max_age=max_age,
        expires=0 if max_age == 0 else None,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


class AppHomeController(Controller):
    dependencies = {
        "accounts": Provide(provide_account_service, sync_to_thread=False),
        "current_session": Provide(provide_current_session, sync_to_thread=False),
    }

    @get("/", name="app:home")
    async def home(
        self,
        page: NamedDependency[Page],
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        request: Request[Any, Any, Any],
    ) -> Template:
        require_credentials(principal)
        if principal.account_id is None:
            raise Unauthenticated("sign in with your WEE5 account")
        async with sessionmaker() as session:
            me = await accounts.me(session, principal.account_id)
        if me is None:
            raise Unauthenticated("the account of this session no longer exists")
        managed = [role.community_id for role in me.roles if role.role in ("admin", "owner")]
        companies = await administered_companies(
            principal, managed, downstream, entitlements, request.app.state
        )
        return page.render("app/home.html", me=me, companies=companies)

    @get("/sign-in", name="app:sign-in")
    async def sign_in_form(
        self, page: NamedDependency[Page], settings: SettingsDep, next: FromQuery[str] = ""
    ) -> Template:
        return page.render(
            "app/sign_in.html",
            next=safe_next(next),
            email="",
            error=None,
            discord_sign_in=_discord_sign_in(settings, next),
        )

    @get(SIGN_IN_PATH.removeprefix(APP_PREFIX), name="app:sign-in-discord")
    async def sign_in_discord(
        self, request: Request[Any, Any, Any], settings: SettingsDep, next: FromQuery[str] = ""
    ) -> Redirect:
        """To Discord's authorize page, with a one-time state this browser keeps in a cookie."""
        configured_client_id(settings)  # refuses (503) before a state is stored
        state = await _sign_in_states(request, settings).issue(safe_next(next))
        return Redirect(
            authorize_url(settings, state),
            status_code=HTTP_302_FOUND,
            cookies=[_state_cookie(state, settings.discord_install_ttl_seconds, settings)],
        )

    @get(CALLBACK_PATH.removeprefix(APP_PREFIX), name="app:sign-in-discord-callback")
    async def sign_in_discord_callback(
        self,
        request: Request[Any, Any, Any],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
        downstream: DownstreamDep,
        code: FromQuery[str] = "",
        # `state` is a name Litestar reserves for the app state.
        sign_in_state: Annotated[str, QueryParameter(name="state")] = "",
        error: FromQuery[str] = "",
    ) -> Response[Any]:
        """Discord's redirect: signs the Discord user in (their account made at the first
        sign-in) with their roles in the communities of their servers worked out anew."""
        target = await _sign_in_states(request, settings).redeem(
            sign_in_state, request.cookies.get(STATE_COOKIE)
        )
        if error:
            raise InvalidSignIn("the sign-in was not approved at Discord; sign in again")
        user = await discord_user(settings, code)
        roles = await community_roles(downstream, user)
        async with sessionmaker.begin() as session:
            signed_in = await accounts.discord_sign_in(
                session, user.id, user.name, roles, client_of(request)
            )
        # Postgres announces the changes to every replica too; this one's next request (the
        # page this answer refreshes to) must see them whatever the order of delivery.
        access_cache = provide_access_cache(request.app.state)
        for community_id in signed_in.changed:
            access_cache.forget_role(community_id, signed_in.grant.account.id)
        # A page, not a redirect: the session cookies are SameSite=Strict, and a browser sends
        # none on a redirect chain that began at Discord.
        return Response(
            f'<!doctype html><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
            f'<p><a href="{html.escape(target)}">Continue</a></p>',
            media_type=MediaType.HTML,
            cookies=[*token_cookies(signed_in.grant, settings), _state_cookie("", 0, settings)],
        )

    @post("/sign-in", status_code=HTTP_303_SEE_OTHER)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        data: Form,
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
    ) -> Response[Any]:
        target = safe_next(data.next)
        try:
            grant, device = await throttled_login(
                request, sessionmaker, accounts, settings, data.email, data.password
            )
        except (Unauthenticated, RateLimited) as refused:
            return page.render(
                "app/sign_in.html",
                status_code=refused.status,
                next=target,
                email=data.email,
                error=refused.detail,
                discord_sign_in=_discord_sign_in(settings, target),
            )
        return Redirect(
            target,
            status_code=HTTP_303_SEE_OTHER,
            cookies=[*token_cookies(grant, settings), device],
        )

    @post("/sign-out", status_code=HTTP_303_SEE_OTHER)
    async def sign_out(
        self,
        principal: NamedDependency[Principal],
        current_session: NamedDependency[CurrentSession],
        sessionmaker: SessionsDep,
        accounts: NamedDependency[AccountService],
        settings: SettingsDep,
    ) -> Redirect:
        """Ends this browser's session (its refresh tokens are revoked, as the API's logout
        does) and clears the cookies."""
        if principal.account_id is not None and current_session.id is not None:
            async with sessionmaker.begin() as session:
                await accounts.revoke_session(session, principal.account_id, current_session.id)
        return Redirect(
            APP_PREFIX + "/sign-in",
            status_code=HTTP_303_SEE_OTHER,
            cookies=cleared_cookies(settings),
        )
