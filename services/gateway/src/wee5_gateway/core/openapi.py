"""The OpenAPI document (served at /schema/openapi.json and .yaml) and its docs pages (/schema,
Swagger UI; /schema/redoc, Redoc; core/api_docs.py).

Routes document their own success and domain errors; `document_errors` adds what the gateway
itself may answer on every route of a kind (400 invalid input, 413 body too large, 429 rate
limited, 500), each as application/problem+json, and the default credentials of community
routes that name none.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.constants import RESERVED_KWARGS
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Example, SecurityScheme, Tag
from litestar.params import BodyKwarg
from litestar.routes import HTTPRoute
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

from wee5_gateway.core.access import ACCESS_COOKIE
from wee5_gateway.core.api_docs import docs_render_plugins
from wee5_gateway.core.problems import PROBLEM_TYPE_BASE, problem_responses, problem_types
from wee5_gateway.core.protection import route_class

BEARER_AUTH = "BearerAuth"
API_KEY_AUTH = "ApiKeyAuth"
COOKIE_AUTH = "CookieAuth"
WHOP_USER_AUTH = "WhopUserToken"
# Community routes accept any of the three; each route's own doc says which roles or scopes.
ANY_CREDENTIAL: list[dict[str, list[str]]] = [
    {BEARER_AUTH: []},
    {API_KEY_AUTH: []},
    {COOKIE_AUTH: []},
]
_COMMUNITY_ROUTES = "/api/v1/communities/"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

DESCRIPTION = """\
The public HTTP API of WEE5, an engagement engine for paid online communities.

**Credentials.** An access token (JWT, 15 minutes) from `POST /api/v1/auth/login` as
`Authorization: Bearer <token>` or the `wee5_access` cookie; or a community's API key as
`X-API-Key: <key>` (or `Authorization: Bearer <key>`). Inside Whop's iframe, the
`x-whop-user-token` Whop adds (when WEE5_WHOP_APP_ID is set): the caller's role in a community
then comes from Whop's access check.

**Errors** are RFC 9457 `application/problem+json` documents. Their `type` says which
problem it is (the list below); a 400 lists each invalid field under `errors`, with the
values allowed there (`allowed`) for a choice, or the closest known field for an unknown one.

**Rate limits** count per route class in a moving window: sign-up, sign-in and refresh per
client IP; reads and writes per API key or account (else per IP); the activity intake per API
key. Limited responses carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`;
over the limit the answer is `429` with `Retry-After` (seconds).

**Request bodies** larger than the configured limit (1 MiB by default) answer `413`.
"""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="WEE5 API",
        version="v1",
        description=DESCRIPTION + _problem_types_section(),
        render_plugins=docs_render_plugins(),
        operation_id_creator=operation_id,
        components=Components(
            security_schemes={
                BEARER_AUTH: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="An access token from sign-in, register or refresh.",
                ),
                API_KEY_AUTH: SecurityScheme(
                    type="apiKey",
                    name="X-API-Key",
                    security_scheme_in="header",
                    description="A community's API key (`wee5_sk_…`), limited to its scopes.",
                ),
                COOKIE_AUTH: SecurityScheme(
                    type="apiKey",
                    name=ACCESS_COOKIE,
                    security_scheme_in="cookie",
                    description="The access token as the httpOnly cookie browsers get.",
                ),
                WHOP_USER_AUTH: SecurityScheme(
                    type="apiKey",
                    name="x-whop-user-token",
                    security_scheme_in="header",
                    description="The JWT Whop's proxy adds to requests from the app's iframe.",
                ),
            }
        ),
        tags=[
            Tag(name="health", description="Liveness and readiness probes"),
            Tag(name="webhooks", description="Inbound provider webhooks"),
        ],
    )


def body_example(
    value: dict[str, Any], summary: str = "Example", description: str | None = None
) -> BodyKwarg:
    """A JSON body documented with an example: `data: Annotated[ActivityIn, body_example({...})]`
    (the OpenAPI test checks every example is a valid body)."""
    return BodyKwarg(description=description, examples=[Example(summary=summary, value=value)])


def _problem_types_section() -> str:
    """The problem types this gateway answers, as a Markdown table for the document."""
    rows = "\n".join(
        f"| `{PROBLEM_TYPE_BASE}{slug}` | {title} |" for slug, title in problem_types().items()
    )
    return f"\n**Problem types**\n\n| type | what |\n|---|---|\n{rows}\n"


def operation_id(
    route_handler: HTTPRouteHandler,
    http_method: Method,
    path_components: list[str | PathParameterDefinition],
) -> str:
    """`receiveWhop` for a handler `receive_whop`: stable as long as the handler keeps its
    name; routes that name an operation_id themselves keep theirs. The OpenAPI test holds
    every operationId unique."""
    first, *rest = route_handler.handler_name.split("_")
    name = first + "".join(part.title() for part in rest)
    if len(route_handler.http_methods) > 1:
        return http_method.lower() + name[:1].upper() + name[1:]
    return name


def document_errors(app: Litestar) -> None:
    """Adds the problems the gateway may answer on any route of a kind to each route's
    documented responses (those it documents itself win), and the default credentials of
    community routes. Runs before the document is first built (it is built lazily)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            statuses = _gateway_statuses(route, handler)
            documented = dict(handler.responses or {})
            missing = [status for status in statuses if status not in documented]
            merged = {**problem_responses(*missing), **documented}
            handler.responses = dict(sorted(merged.items()))
            # Not resolve_security(): it memoizes, and this may still set the handler's own.
            names_credentials = any(layer.security for layer in handler.ownership_layers)
            if route.path_format.startswith(_COMMUNITY_ROUTES) and not names_credentials:
                handler.security = ANY_CREDENTIAL


def _gateway_statuses(route: HTTPRoute, handler: HTTPRouteHandler) -> list[int]:
    methods = {str(method) for method in handler.http_methods}
    statuses = []
    if route.path_parameters or _takes_input(handler) or methods & _BODY_METHODS:
        statuses.append(400)  # replaces Litestar's own 400, which is not a problem document
    if methods & _BODY_METHODS:
        statuses.append(413)
    if any(route_class(method, route.path_format) is not None for method in methods):
        statuses.append(429)
    statuses.append(500)
    return statuses


def _takes_input(handler: HTTPRouteHandler) -> bool:
    """Whether the handler validates query, header, cookie or body parameters."""
    dependencies = handler.resolve_dependencies()
    return any(
        name not in dependencies and (name not in RESERVED_KWARGS or name == "data")
        for name in handler.parsed_fn_signature.parameters
    )
