"""The accounts context: sign-up, sign-in, refresh-token rotation with reuse detection,
sign-out, and the caller's own account: its community roles, password, email, sessions and
deletion."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.accounts.controller import AccountController

ROUTES: list[ControllerRouterHandler] = [AccountController]
