"""Error reporting to Sentry: every process reports its unhandled exceptions, and the gateway
its 5xx answers, when `WEE5_SENTRY_DSN` is set; without it nothing is sent (startup says so
once) and nothing here runs per request.

What is reported: an exception our code logs with its traceback (`log.exception`, or
`exc_info=` at error level: the gRPC interceptor's "rpc failed", a crashed background loop, a
consumer's failed handler) through `log_processors()`, plus what the official integrations
catch (Litestar in the gateway, gRPC and asyncio in the services). Each event carries the
environment (`WEE5_ENVIRONMENT`), the release (`WEE5_RELEASE`, the image version), the service
and the request, community and event ids of the logs as tags.

What is never reported: secrets, tokens, e-mail addresses and message text. `scrub_event`
(`before_send`) drops request bodies, cookies, query strings and every header but a few
harmless ones, blanks the values of keys that name a secret or a text, and rewrites every
string left: e-mail addresses, bearer tokens, JWTs, keys of known formats, passwords in URLs
and SQL parameters become `[Filtered]`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from structlog.contextvars import get_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

from wee5_kit.logging import get_logger

if TYPE_CHECKING:
    # The SDK is imported only when reporting is on (it costs a process's start otherwise).
    from sentry_sdk.integrations import Integration
    from sentry_sdk.types import Event, Hint

log = get_logger("wee5.sentry")

T = TypeVar("T")

FILTERED = "[Filtered]"
# The ids of the logs' context that become tags (wee5_kit.logging binds them).
CONTEXT_TAGS = ("request_id", "community_id", "event_id", "rpc", "consumer")
# Headers worth seeing in an event; every other one (Authorization, Cookie, the webhook
# signatures, x-whop-user-token, …) is dropped.
SAFE_HEADERS = frozenset(
    {"accept", "content-length", "content-type", "host", "user-agent", "x-request-id"}
)
# A key naming one of these has its value blanked wherever it appears in an event.
_SECRET_KEY = re.compile(
    r"pass|secret|token|auth|cookie|session|signature|api_?key|dsn|credential|private"
    r"|e_?mail|content|message_text|^text$|^body$|^data$|query|fragment",
    re.IGNORECASE,
)
_SECRET_TEXT = (
    # E-mail addresses.
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    # Bearer and Basic credentials, JWTs (three base64url parts, the first '{"' encoded).
    re.compile(r"(?i)\b(?:bearer|basic)\s+[\w.~+/=-]+"),
    re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"),
    # Keys of the formats we hold: webhook secrets, Stripe, Whop, Discord bot tokens.
    re.compile(r"\b(?:whsec|ws|sk|rk|pk|apik|whop)_[\w-]{8,}"),
    re.compile(r"\b[\w-]{24,}\.[\w-]{6}\.[\w-]{27,}\b"),
    # The password (or the whole user info) of a URL.
    re.compile(r"(?<=://)[^/\s:@]*:[^/\s@]*(?=@)"),
    # What SQLAlchemy quotes of a failed statement's parameters (member ids, message text).
    re.compile(r"(?s)(?<=\[parameters: ).*?(?=\]\s*(?:\(|$))"),
)
# The community of a gateway request, when no log context names it.
_COMMUNITY_PATH = re.compile(r"/communities/([^/?#]+)")


class ErrorReportingSettings(BaseSettings):
    """`WEE5_SENTRY_DSN` (a secret: its key lets anyone send events), `WEE5_ENVIRONMENT`
    and `WEE5_RELEASE` (the image version, set by the chart)."""

    model_config = SettingsConfigDict(env_prefix="WEE5_", extra="ignore", frozen=True)

    sentry_dsn: SecretStr | None = None
    environment: str = "development"
    release: str | None = None

    def enabled(self) -> bool:
        return bool(self.sentry_dsn and self.sentry_dsn.get_secret_value().strip())


def start_error_reporting(
    service: str,
    settings: ErrorReportingSettings | None = None,
    *,
    integrations: Callable[[], Sequence[Integration]] = tuple,
    reportable: Callable[[BaseException], bool] | None = None,
) -> bool:
    """Starts the Sentry SDK for this process when a DSN is set; says once that reporting is
    off otherwise. Call it inside the running event loop (the asyncio integration patches
    that loop's tasks), before building servers, channels or the app (the gRPC and Litestar
    integrations hook their construction). `reportable` drops an exception that is a
    deliberate answer (a 404 the gateway gives), not a failure. `integrations` makes the
    process's own integrations, only when reporting is on: the SDK is imported only then."""
    settings = settings or ErrorReportingSettings()
    if not settings.enabled():
        log.info("error reporting is off: WEE5_SENTRY_DSN is not set")
        return False
    assert settings.sentry_dsn is not None
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.grpc import GRPCIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value().strip(),
        environment=settings.environment,
        release=settings.release or None,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        # Errors only: traces are OpenTelemetry's (wee5_kit.tracing).
        traces_sample_rate=None,
        # Only the integrations named here: auto-enabling imported every library the SDK
        # knows (seconds of a process's start) and hooked SQLAlchemy, Redis and httpx.
        auto_enabling_integrations=False,
        integrations=[
            # No Sentry span per task (traces are OpenTelemetry's): about 0.2 ms of CPU less
            # per gRPC round trip, measured.
            AsyncioIntegration(task_spans=False),
            GRPCIntegration(),
            # At exit, pending events are sent without a note on stderr (not a JSON line).
            AtexitIntegration(callback=lambda pending, timeout: None),
            *integrations(),
        ],
        before_send=_before_send(service, reportable),
        before_send_transaction=lambda event, hint: None,
    )
    sentry_sdk.set_tag("service", service)
    log.info("error reporting to Sentry is on", environment=settings.environment)
    return True


async def reporting_errors(service: str, work: Awaitable[T]) -> T:
    """Awaits `work` (a one-shot task's) with error reporting started in its loop: what it
    logs with a traceback, and what it raises, is reported."""
    if start_error_reporting(service):
        try:
            return await work
        except Exception as error:
            import sentry_sdk

            sentry_sdk.capture_exception(error)
            raise
    return await work


def log_processors(settings: ErrorReportingSettings | None = None) -> list[Processor]:
    """The structlog processors that report logged exceptions (none without a DSN, so a log
    line costs nothing more when reporting is off)."""
    settings = settings or ErrorReportingSettings()
    return [report_logged_exception] if settings.enabled() else []


def report_logged_exception(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Sends the exception of an error line (`log.exception`, `exc_info=`) to Sentry. The same
    exception object is sent once (the SDK's dedupe), however many lines log it."""
    exc_info = event_dict.get("exc_info")
    if exc_info and method_name in ("error", "exception", "critical", "fatal"):
        if isinstance(exc_info, BaseException):
            error: BaseException | None = exc_info
        elif isinstance(exc_info, tuple):
            error = exc_info[1]
        else:
            error = sys.exc_info()[1]
        if error is not None:
            import sentry_sdk

            with sentry_sdk.new_scope() as scope:
                scope.set_extra("log", event_dict.get("event"))
                scope.set_tag("logger", event_dict.get("logger") or getattr(logger, "name", ""))
                sentry_sdk.capture_exception(error)
    return event_dict


def _before_send(
    service: str, reportable: Callable[[BaseException], bool] | None
) -> Callable[[Event, Hint], Event | None]:
    def before_send(event: Event, hint: Hint) -> Event | None:
        exc_info = hint.get("exc_info")
        if reportable is not None and exc_info and not reportable(exc_info[1]):
            return None
        tag_with_context(event, service)
        return scrub_event(event)

    return before_send


def tag_with_context(event: Event, service: str) -> None:
    """Tags `event` with the service and the ids the logs carry where it happened."""
    tags = event.setdefault("tags", {})
    tags["service"] = service
    context = get_contextvars()
    for key in CONTEXT_TAGS:
        value = context.get(key)
        if value:
            tags[key] = str(value)
    if "community_id" not in tags:
        url = str((event.get("request") or {}).get("url") or "")
        if match := _COMMUNITY_PATH.search(url):
            tags["community_id"] = match.group(1)


def scrub_event(event: Event) -> Event:
    """`event` without secrets, tokens, e-mail addresses or message text (see the module)."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "query_string", "env"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS
            }
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {key: value for key, value in user.items() if key == "id"}
    scrubbed: Event = _scrub(event)
    return scrubbed


def scrub_text(text: str) -> str:
    for pattern in _SECRET_TEXT:
        text = pattern.sub(FILTERED, text)
    return text


def _scrub(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {name: _scrub(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value
