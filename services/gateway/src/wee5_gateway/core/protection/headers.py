"""What every response carries (security headers), who may call from a browser (CORS), and
response compression (gzip)."""

from __future__ import annotations

from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from wee5_gateway.config import GatewaySettings

DOCS_PATH = "/schema"
# The API answers JSON only: nothing in a response may load, run or frame anything.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The interactive docs (Swagger UI, Redoc) load their scripts, styles and icons from this
# origin only (vendored, started without inline script); both set inline styles, Redoc runs
# its search in a worker made from a blob, and "Try it out" calls this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Pages load only our own scripts, styles and fonts (no inline script), show avatars from
# anywhere over https, post forms only here (whose answer may send the browser on to Stripe's
# Checkout or Customer Portal: browsers apply form-action to a form's redirects too), and may be
# framed only where `frame_ancestors` says: Whop's origins on the views Whop shows in its
# iframe, nobody under /app.
STRIPE_PAGES = "https://checkout.stripe.com https://billing.stripe.com"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; "
    f"form-action 'self' {STRIPE_PAGES}; frame-ancestors {{frame_ancestors}}"
)
WHOP_VIEW_PREFIXES = ("/experiences/", "/dashboard/", "/discover")
APP_VIEW_PREFIX = "/app"
HSTS = "max-age=63072000; includeSubDomains"
_COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
_NO_FRAMES = ("X-Frame-Options", "DENY")
_SCHEMA_FILES = (".json", ".yaml", ".yml")

# Headers a browser app may send, and may read from responses.
CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    "X-Use-Cookies",
    "Idempotency-Key",
    "Last-Event-ID",
]
CORS_EXPOSE_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
]


class SecurityHeaders:
    """Adds the security headers to every HTTP response (404s and errors included), unless a
    route set its own. HSTS only on requests that came over https (uvicorn takes the scheme
    from X-Forwarded-Proto of a trusted proxy)."""

    def __init__(self, app: ASGIApp, whop_frame_ancestors: str) -> None:
        self.app = app
        self.whop_view_csp = PAGE_CSP.format(frame_ancestors=whop_frame_ancestors)
        self.app_view_csp = PAGE_CSP.format(frame_ancestors="'none'")

    def _policy(self, path: str) -> tuple[tuple[str, str], ...]:
        if path.startswith(WHOP_VIEW_PREFIXES):  # Whop frames these; X-Frame-Options cannot say so
            return (("Content-Security-Policy", self.whop_view_csp),)
        if path == APP_VIEW_PREFIX or path.startswith(APP_VIEW_PREFIX + "/"):
            return (("Content-Security-Policy", self.app_view_csp), _NO_FRAMES)
        docs = (path == DOCS_PATH or path.startswith(DOCS_PATH + "/")) and not path.endswith(
            _SCHEMA_FILES
        )
        return (("Content-Security-Policy", DOCS_CSP if docs else API_CSP), _NO_FRAMES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        headers = [*_COMMON, *self._policy(scope["path"])]
        if scope.get("scheme") == "https":
            headers.append(("Strict-Transport-Security", HSTS))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = MutableScopeHeaders.from_message(message)
                for name, value in headers:
                    if name not in present:
                        present[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors_config(settings: GatewaySettings) -> CORSConfig | None:
    """CORS for the configured origins only; with none configured, browsers on other origins
    get no Access-Control-Allow-Origin and cannot read any answer."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        # The access cookie (wee5_access) is a credential too.
        allow_credentials=True,
        max_age=600,
    )


def compression_config() -> CompressionConfig:
    """gzip for responses of 1 KiB or more when the client accepts it. The live stream (SSE)
    is left alone: its events must reach the browser as they are written, and a route can
    opt out with `opt={"no_compression": True}`."""
    return CompressionConfig(
        backend="gzip",
        minimum_size=1024,
        gzip_compress_level=6,
        exclude=r"/stream$",
        exclude_opt_key="no_compression",
    )
