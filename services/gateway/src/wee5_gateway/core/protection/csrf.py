"""Writes a browser can be tricked into sending: refused.

- A JSON route (`/api/v1/…`) takes a body only as JSON (`application/json` or `…+json`):
  anything else is a 415 problem. A page on another site can POST `text/plain` or a form
  without a CORS preflight; such a body is never read as JSON.
- A write carrying the gateway's cookies (`wee5_access`, `wee5_refresh`) and no header
  credential is refused (403) unless it comes from our own origin: its `Origin` is the
  gateway's (the request's own host, `WEE5_PUBLIC_URL`) or a configured CORS origin; or,
  when a browser sends no `Origin` (or `null`: our pages' `Referrer-Policy: no-referrer`
  makes browsers send that with a form's POST), its `Sec-Fetch-Site` is `same-origin` or
  `none`. A request that says neither is not from a browser that could be fooled: current
  browsers send a real `Origin` or `Sec-Fetch-Site` with every cross-origin write, and one
  too old for both keeps our SameSite=Strict cookies off other sites' requests.
  A bearer token, an API key or Whop's `x-whop-user-token` is never sent by a browser on its
  own, so requests carrying one are not checked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import ACCESS_COOKIE, API_KEY_HEADER
from wee5_gateway.core.problems import ProblemError

API_PREFIX = "/api/v1/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
REFRESH_COOKIE = "wee5_refresh"
_COOKIES = (ACCESS_COOKIE, REFRESH_COOKIE)
_HEADER_CREDENTIALS = ("authorization", API_KEY_HEADER, "x-whop-user-token")
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class CrossOriginWrite(ProblemError):
    status = 403
    slug = "cross-origin-write"
    title = "Cross-origin write refused"


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class RequestOriginMiddleware(ASGIMiddleware):
    """See the module doc."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: GatewaySettings) -> None:
        self.trusted = frozenset(
            {_origin_of(settings.public_url)} | {_origin_of(o) for o in settings.cors_origins}
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method: str = scope["method"]  # type: ignore[typeddict-item]
        if method not in SAFE_METHODS:
            headers = Headers.from_scope(scope)
            if _cookie_only(headers):
                self._check_origin(headers)
        await next_app(scope, receive, send)

    def _check_origin(self, headers: Headers) -> None:
        origin = headers.get("origin")
        if origin is None or origin == "null":
            # `null`: our pages send `Referrer-Policy: no-referrer`, with which browsers hide
            # the origin of a form's POST, same-origin ones included; Sec-Fetch-Site tells.
            fetch_site = headers.get("sec-fetch-site")
            if fetch_site is None or fetch_site in _SAME_ORIGIN_FETCH:
                return
            raise CrossOriginWrite(f"a {fetch_site} request may not write with this site's cookies")
        # Our own host, whichever scheme (a TLS proxy the gateway does not trust still
        # forwards plain http): a page on another site cannot have our host name.
        own = headers.get("host", "").lower()
        if origin.lower() in self.trusted or (own and urlsplit(origin.lower()).netloc == own):
            return
        raise CrossOriginWrite(
            f"a page of {origin} may not write with this site's cookies; send a bearer token "
            "or an API key from other origins"
        )


async def refuse_non_json_body(request: Request[Any, Any, Any]) -> None:
    """The app's `before_request` hook (it runs after the access guard, so a caller without
    access still learns only that): a JSON route's body must be JSON."""
    if request.method in SAFE_METHODS or not request.url.path.startswith(API_PREFIX):
        return
    if not _has_body(request.headers):
        return
    sent = request.headers.get("content-type", "")
    if not is_json(sent):
        media = sent.split(";", 1)[0].strip()
        raise UnsupportedMediaType(
            "send the body as JSON (Content-Type: application/json), "
            + (f"not {media}" if media else "with a Content-Type")
        )


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def _cookie_only(headers: Headers) -> bool:
    """Whether the request's credential, if any, can only be a cookie the browser added."""
    if any(headers.get(name) for name in _HEADER_CREDENTIALS):
        return False
    names = {part.split("=", 1)[0].strip() for part in headers.get("cookie", "").split(";")}
    return any(name in names for name in _COOKIES)
