"""Errors as RFC 9457 `application/problem+json`: the one place a failure becomes an HTTP answer.

Four sources, one body shape: problems the gateway raises itself (`ProblemError`), gRPC
status from a downstream service and `wee5_kit`'s domain errors (one table, `GRPC_TO_HTTP`),
and Litestar's own HTTP errors (validation, unknown route). Anything else is a 500 whose cause stays in the logs.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import grpc
import msgspec
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from wee5_gateway.core.input_errors import explain
from wee5_kit.errors import DomainError
from wee5_kit.logging import get_logger
from wee5_kit.outages import RETRY_AFTER_SECONDS, unavailable_dependency
from wee5_kit.proto import EnumCodec

log = get_logger("wee5.gateway")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://wee5.dev/problems/"

# gRPC status of a downstream call → HTTP status. Codes not listed answer 502.
GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
UNMAPPED_GRPC_STATUS = 502

# The problem type of an answer that has no more specific one: by HTTP status, and for a
# downstream service's refusal by its gRPC status (two kinds of 409 are not one problem).
STATUS_PROBLEM_TYPES: dict[int, str] = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "rule-violated",
    429: "rate-limited",
    500: "internal-error",
    501: "not-implemented",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}
GRPC_PROBLEM_TYPES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.ALREADY_EXISTS: "already-exists",
    grpc.StatusCode.FAILED_PRECONDITION: "not-possible-now",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "limit-reached",
}
OTHER_PROBLEM_TYPE = "http-error"
# Refusals the services name (their domain error's `ErrorInfo` reason), each its own type.
REFUSAL_TYPES: dict[str, str] = {
    "benchmarks-disabled": "Benchmarks are turned off in this community",
    "not-awaiting-review": "The submission is not awaiting review",
    "too-many-revisions": "The submission changed too often; try again later",
    "library-disabled": "The resource library is turned off in this community",
    "membership-required": "An active membership is required to download",
    "upload-used": "The upload was published and deleted since; ask for a new upload URL",
    "file-missing": "Nothing was uploaded yet; upload the file first",
    "reward-not-retryable": "Only dead, failed or waiting rewards can be retried",
    "announcement-not-retryable": "Only dead or waiting announcements can be retried",
    "company-not-known": "The community's company is not known yet",
    "badge-name-taken": "The community already has a badge of that name",
    "badge-in-use": "The badge is the reward of a level rule",
    "idempotency-key-reused": "The idempotency key was used for a different request",
    "import-would-count-twice": "Importing this would count XP twice",
    "adjustment-below-zero": "The adjustment would take the member's XP below 0",
    "stripe-rejected": "Stripe refused the request",
    "price-not-configured": "The plan is not sold at that interval yet",
    "already-subscribed": "The community already has a subscription",
    "no-stripe-customer": "The community has no subscription through Stripe yet",
    "not-the-paying-owner": "Only the owner who pays manages billing",
    "group-not-found": "No such group",
    "not-the-group-owner": "Only the group's owner changes its communities",
    "in-whop-company": "The community belongs to a Whop company",
    "submission-of-another": "The member's answers belong to another account",
    "guild-needs-proof": "A Discord server is bound by installing the bot or by a platform admin",
    "guild-bound-elsewhere": "The Discord server is bound to another community",
}

# Server-side failures say what happened in general terms; their details stay in the logs.
_SERVER_DETAILS = {
    501: "this operation is not available yet",
    502: "a service behind the gateway failed",
    503: "a service behind the gateway is unavailable; try again shortly",
    504: "a service behind the gateway did not answer in time",
}
_INTERNAL_DETAIL = "an unexpected error occurred; it has been logged"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    # Extension members.
    checks: dict[str, str] | None = None
    errors: list[dict[str, Any]] | None = None
    # On 402: the plan that unlocks the feature.
    required_plan: str | None = None


class ProblemError(Exception):
    """A failure the gateway answers itself. Subclasses name the problem type."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "invalid-request"
    title: ClassVar[str] = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        checks: dict[str, str] | None = None,
        required_plan: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.checks = checks
        self.required_plan = required_plan
        self.headers = headers


class Unauthenticated(ProblemError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="wee5"'})


class Forbidden(ProblemError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class PlanRequired(ProblemError):
    status = 402
    slug = "plan-required"
    title = "A higher plan is required"


class Conflict(ProblemError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class NotFoundProblem(ProblemError):
    status = 404
    slug = "not-found"
    title = "Not found"


class WebhookSignatureInvalid(ProblemError):
    status = 401
    slug = "invalid-webhook-signature"
    title = "Webhook signature rejected"


class WebhookPayloadInvalid(ProblemError):
    status = 400
    slug = "invalid-webhook-payload"
    title = "Webhook payload not understood"


class WebhookNotConfigured(ProblemError):
    status = 503
    slug = "webhook-not-configured"
    title = "Webhook intake not configured"


class NotReady(ProblemError):
    status = 503
    slug = "not-ready"
    title = "Not ready"


class RateLimited(ProblemError):
    """Over a rate limit; the headers say when to try again (Retry-After, RateLimit-*)."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class UpstreamAnswerInvalid(ProblemError):
    """A service answered something this gateway cannot show (e.g. an enum value added to a
    contract the gateway was not rebuilt with): the gateway's fault, never the caller's."""

    status = 502
    slug = "bad-gateway"
    title = "Bad gateway"


GRPC_PROBLEM_TITLES = {
    "already-exists": "Already exists",
    "not-possible-now": "Not possible in the current state (e.g. benchmarks or the library "
    "turned off, a reward not dead)",
    "limit-reached": "A limit was reached",
}


def problem_types() -> dict[str, str]:
    """Every problem type this gateway answers (the slug after PROBLEM_TYPE_BASE) and its
    title, for the OpenAPI document."""
    types = {slug: HTTPStatus(status).phrase for status, slug in STATUS_PROBLEM_TYPES.items()}
    types.update(GRPC_PROBLEM_TITLES)
    types.update(REFUSAL_TYPES)
    types[OTHER_PROBLEM_TYPE] = "Another HTTP error"
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        kind = pending.pop()
        types.setdefault(kind.slug, kind.title)
        pending.extend(kind.__subclasses__())
    return dict(sorted(types.items()))


def reply_name(codec: EnumCodec[Any], value: int) -> str:
    """The public name of an enum value in a service's reply; an unknown or unspecified one
    is a 502, since a 400 would blame the caller for our own contract drift."""
    name = codec.name_or_none(value)
    if name is None:
        log.error("reply carries an unknown enum value", enum=codec.what, value=value)
        raise UpstreamAnswerInvalid(
            f"a service behind the gateway answered an unknown {codec.what}"
        )
    return name


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


def problem_response(
    request: Request[Any, Any, Any], problem: Problem, *, headers: dict[str, str] | None = None
) -> Response[Problem]:
    """`problem` as the answer to `request` (its `instance` is the request's path)."""
    problem.instance = request.url.path
    return Response(
        problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def plain_problem(
    status: int,
    detail: str | None,
    errors: list[dict[str, Any]] | None = None,
    *,
    slug: str | None = None,
) -> Problem:
    """A problem typed by `slug` or else by its HTTP status, titled by its HTTP status."""
    slug = slug or STATUS_PROBLEM_TYPES.get(status, OTHER_PROBLEM_TYPE)
    return Problem(
        type=PROBLEM_TYPE_BASE + slug,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=errors,
    )


def _gateway_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[Problem]:
    problem = Problem(
        type=PROBLEM_TYPE_BASE + exc.slug,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        checks=exc.checks,
        required_plan=exc.required_plan,
    )
    return problem_response(request, problem, headers=exc.headers)


def _status_details(exc: grpc.aio.AioRpcError) -> list[Any]:
    """The `google.rpc.Status` details a service attached to its status (`Any` messages)."""
    metadata: Any = exc.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return list(status_pb2.Status.FromString(value).details)
    return []


def field_violations(exc: grpc.aio.AioRpcError) -> list[dict[str, Any]]:
    """The `google.rpc.BadRequest` field violations a service attached to its status, shaped
    like Litestar's own validation errors."""
    errors: list[dict[str, Any]] = []
    for detail in _status_details(exc):
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            errors.extend(
                {"key": v.field, "message": v.description, "source": "body"}
                for v in bad_request.field_violations
            )
    return errors


def refusal_type(exc: grpc.aio.AioRpcError) -> str | None:
    """The problem type of a service's documented refusal (its `google.rpc.ErrorInfo` reason,
    e.g. `BENCHMARKS_DISABLED` → `benchmarks-disabled`); None for any other failure."""
    for detail in _status_details(exc):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            slug = info.reason.lower().replace("_", "-")
            return slug if slug in REFUSAL_TYPES else None
    return None


def _grpc_problem(request: Request[Any, Any, Any], exc: grpc.aio.AioRpcError) -> Response[Problem]:
    code = exc.code()
    errors = field_violations(exc) if code == grpc.StatusCode.INVALID_ARGUMENT else []
    if errors:
        # The request was well-formed but its content breaks named rules: 422, field by field.
        return problem_response(request, plain_problem(422, exc.details() or None, errors))
    problem = _status_problem(code, exc.details() or None)
    if problem.status < 500 and (slug := refusal_type(exc)):
        problem.type, problem.title = PROBLEM_TYPE_BASE + slug, REFUSAL_TYPES[slug]
    return problem_response(request, problem, headers=_retry_headers(problem.status))


def _domain_problem(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    """A rule of `wee5_kit` the gateway applies itself (a community id, a page token): its
    gRPC status answers through the same table as a downstream service's."""
    problem = _status_problem(exc.status, exc.message)
    return problem_response(request, problem, headers=_retry_headers(problem.status))


def _retry_headers(status: int) -> dict[str, str] | None:
    """`Retry-After` on a 503: what made it (a service or our infrastructure away) passes."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None


def _status_problem(code: grpc.StatusCode, detail: str | None) -> Problem:
    status = GRPC_TO_HTTP.get(code, UNMAPPED_GRPC_STATUS)
    if status < 500:
        return plain_problem(status, detail, slug=GRPC_PROBLEM_TYPES.get(code))
    log.warning("downstream call failed", grpc_code=code.name, grpc_details=detail)
    return plain_problem(status, _SERVER_DETAILS[status])


def _http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if status >= 500:
        log.error("request failed", error=type(exc).__name__, detail=exc.detail)
        return problem_response(
            request, plain_problem(status, _INTERNAL_DETAIL), headers=exc.headers
        )
    errors: list[dict[str, Any]] | None = None
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        items = [item for item in exc.extra if isinstance(item, dict)]
        errors = explain(items, request.scope.get("route_handler")) or None
    if errors:
        # "limit: Expected `int` <= 100" says more than "Validation failed for GET /…".
        detail = "; ".join(
            f"{item['key']}: {item['message']}" if item.get("key") else str(item.get("message"))
            for item in errors
        )
    return problem_response(request, plain_problem(status, detail, errors), headers=exc.headers)


def _body_too_large(
    request: Request[Any, Any, Any], exc: RequestEntityTooLarge
) -> Response[Problem]:
    limit = request.route_handler.resolve_request_max_body_size()
    return _gateway_problem(
        request, PayloadTooLarge(f"the request body is larger than the {limit} bytes accepted")
    )


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    """A JSON body nested deeper than the decoder recurses (msgspec stops at Python's
    recursion limit, about a thousand levels): the caller's input, not our failure."""
    log.warning("request body nested too deeply", path=request.url.path)
    return problem_response(
        request, plain_problem(400, "the request body is nested too deeply to read")
    )


def _unexpected_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if dependency := unavailable_dependency(exc):
        # Our database, Redis or NATS away (wee5_kit.outages): retryable, and not a bug.
        log.warning(
            "request failed: dependency unavailable",
            dependency=dependency,
            error=type(exc).__name__,
        )
        problem = plain_problem(
            503, f"the gateway's {dependency} is unavailable; try again shortly"
        )
        return problem_response(request, problem, headers=_retry_headers(503))
    log.error("unhandled error", error=type(exc).__name__, exc_info=exc)
    return problem_response(request, plain_problem(500, _INTERNAL_DETAIL))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ProblemError: _gateway_problem,
    grpc.aio.AioRpcError: _grpc_problem,
    DomainError: _domain_problem,
    RequestEntityTooLarge: _body_too_large,
    RecursionError: _too_deep,
    HTTPException: _http_problem,
    Exception: _unexpected_problem,
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers a route documents in the OpenAPI schema."""
    return {
        status: ResponseSpec(
            Problem,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }
