"""Outside Whop (`/app`): the email sign-in, and the list of the caller's communities with
links to their member and admin views. The sign-in is the JSON API's (same service, same
cookies); the pages add only the form around it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from wee5_gateway.api.accounts.controller import (
    CurrentSession,
    cleared_cookies,
    provide_account_service,
    provide_current_session,
    throttled_login,
    token_cookies,
)
from wee5_gateway.api.accounts.service import AccountService
from wee5_gateway.core.access import Principal, require_credentials
from wee5_gateway.core.deps import DownstreamDep, EntitlementsDep, SessionsDep, SettingsDep
from wee5_gateway.core.problems import RateLimited, Unauthenticated
from wee5_gateway.web.company import administered_companies
from wee5_gateway.web.page import APP_PREFIX, Page

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
        self, page: NamedDependency[Page], next: FromQuery[str] = ""
    ) -> Template:
        return page.render("app/sign_in.html", next=safe_next(next), email="", error=None)

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
