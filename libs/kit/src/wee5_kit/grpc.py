"""grpc.aio plumbing: the server every service runs, and client channels with deadlines.

The server registers the standard health service and reflection, binds request ids into the
logs, writes one access-log line per call, turns domain errors into their status (anything
unexpected into INTERNAL, never leaking its message), and drains gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_interceptor.server import AsyncServerInterceptor
from grpc_reflection.v1alpha import reflection

from wee5_kit.aio import cancel_and_wait
from wee5_kit.communities import check_ids
from wee5_kit.errors import DomainError, InvalidField
from wee5_kit.internal_calls import HEALTH_PREFIX, InternalCalls
from wee5_kit.logging import bind_contextvars, bound_contextvars, get_logger
from wee5_kit.outages import unavailable_dependency

log = get_logger("wee5.grpc")

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
# Absolute time.monotonic() by which the current inbound call must be answered.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "deadline", default=None
)

# How often a server asks its dependencies whether they answer (`add_dependency`).
DEPENDENCY_CHECK_SECONDS = 5.0
# The health service name that says only "this process runs and answers" (Kubernetes'
# liveness probe): SERVING whatever its dependencies do, so an outage of Postgres or Redis
# makes the service unready, never restarted. "" (the overall health) follows them.
LIVENESS = "liveness"


class ServerInterceptor(AsyncServerInterceptor):
    """The caller's token first (`InternalCalls`), then request id, access log and
    domain-error → status mapping, in that order."""

    def __init__(self, calls: InternalCalls | None = None) -> None:
        self.calls = calls or InternalCalls()

    async def intercept(
        self,
        method: Callable[..., Any],
        request_or_iterator: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        if not self.calls.admits(method_name, metadata):
            log.warning("rpc refused: internal token missing or wrong", rpc=method_name)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "internal token missing or wrong")
        request_id = str(metadata.get(REQUEST_ID_HEADER) or uuid.uuid4())
        request_id_var.set(request_id)
        remaining = context.time_remaining()
        deadline_var.set(time.monotonic() + remaining if remaining is not None else None)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        context_ids = {"request_id": request_id, "rpc": method_name}
        if community_id := getattr(request_or_iterator, "community_id", None):
            # In the logs and in error reports (wee5_kit.sentry tags events with it).
            context_ids["community_id"] = community_id
        with bound_contextvars(**context_ids):
            try:
                if isinstance(request_or_iterator, Message):
                    check_ids(request_or_iterator)
                result = method(request_or_iterator, context)
                return await result if asyncio.iscoroutine(result) else result
            except DomainError as error:
                code = error.status
                await context.abort(error.status, error.message, error_details(error))
            except NotImplementedError:
                code = grpc.StatusCode.UNIMPLEMENTED
                await context.abort(code, f"{method_name} is not implemented yet")
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                if dependency := unavailable_dependency(error):
                    # Ours and passing (module wee5_kit.outages): the caller may try again.
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning(
                        "rpc failed: dependency unavailable",
                        dependency=dependency,
                        error=type(error).__name__,
                    )
                    await context.abort(
                        code, f"{dependency} unavailable", outage_details(dependency)
                    )
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc failed")
                await context.abort(code, "internal error")
            finally:
                if not method_name.startswith(HEALTH_PREFIX):
                    log.info(
                        "rpc",
                        code=code.name,
                        ms=round((time.perf_counter() - started) * 1000, 2),
                    )


STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "wee5.dev"


DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"


def error_details(error: DomainError) -> tuple[tuple[str, bytes], ...]:
    """The trailing metadata that carries `error`'s reason as a `google.rpc.ErrorInfo` in the
    call's `google.rpc.Status`, for callers to tell one refusal of a status from another."""
    extra = []
    if isinstance(error, InvalidField):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=error.message
        )
        extra.append(error_details_pb2.BadRequest(field_violations=[violation]))
    return _status_details(
        error.status,
        error.message,
        error_details_pb2.ErrorInfo(reason=error.reason_code()),
        *extra,
    )


def outage_details(dependency: str) -> tuple[tuple[str, bytes], ...]:
    """UNAVAILABLE's details when a dependency of the service is down: reason
    `DEPENDENCY_UNAVAILABLE`, the dependency in the `ErrorInfo`'s metadata."""
    info = error_details_pb2.ErrorInfo(
        reason=DEPENDENCY_UNAVAILABLE, metadata={"dependency": dependency}
    )
    return _status_details(grpc.StatusCode.UNAVAILABLE, f"{dependency} unavailable", info)


def _status_details(
    code: grpc.StatusCode, message: str, info: Any, *more: Any
) -> tuple[tuple[str, bytes], ...]:
    info.domain = ERROR_DOMAIN
    details = []
    for detail in (info, *more):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return ((STATUS_DETAILS_KEY, status.SerializeToString()),)


class GrpcServer:
    """One service's gRPC server plus the background loops (relays, consumers) it runs."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        shutdown_grace: float = 10.0,
        dependency_check_seconds: float = DEPENDENCY_CHECK_SECONDS,
        calls: InternalCalls | None = None,
        interceptors: Iterable[grpc.aio.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        """`interceptors` run outside the kit's own (they see the status it answered)."""
        self.name = name
        self.calls = calls or InternalCalls()
        self.host = host
        self.dependency_check_seconds = dependency_check_seconds
        self._dependencies: dict[str, Callable[[], Awaitable[object]]] = {}
        self.address = f"{host}:{port}"
        self.shutdown_grace = shutdown_grace
        self.server = grpc.aio.server(interceptors=[*interceptors, ServerInterceptor(self.calls)])
        self.health = HealthServicer()
        # The health service alone, in plaintext, when the main port speaks TLS.
        self.health_server: grpc.aio.Server | None = None
        self._service_names: list[str] = [
            reflection.SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        ]
        self._background: list[Callable[[], Awaitable[None]]] = []
        self._cleanup: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.port: int | None = None

    def add_service(self, full_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
        register(self.server)
        self._service_names.append(full_name)

    def add_background(self, loop: Callable[[], Awaitable[None]]) -> None:
        """A coroutine that runs until cancelled at shutdown (e.g. an outbox relay)."""
        self._background.append(loop)

    def add_dependency(self, name: str, check: Callable[[], Awaitable[object]]) -> None:
        """Something the service cannot answer without (its database, Redis, NATS): `check`
        raises or returns False when it is down. While one is down, the health service says
        NOT_SERVING (the gateway's /readyz names this service), and SERVING again after."""
        self._dependencies[name] = check

    def add_cleanup(self, close: Callable[[], Awaitable[None]]) -> None:
        """Runs after the server stopped, in reverse order of registration."""
        self._cleanup.append(close)

    async def start(self) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(self._service_names, self.server)
        credentials = self.calls.server_credentials()
        if credentials is None:
            self.port = self.server.add_insecure_port(self.address)
        else:
            self.port = self.server.add_secure_port(self.address, credentials)
        await self.server.start()
        if self.calls.serves_tls and self.calls.health_port is not None:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_server.add_insecure_port(f"{self.host}:{self.calls.health_port}")
            await self.health_server.start()
        for name in (LIVENESS, "", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        background = [*self._background]
        if self._dependencies:
            background.append(self._watch_dependencies)
        self._tasks = [asyncio.create_task(_supervised(loop)) for loop in background]
        bind_contextvars()
        log.info(
            "serving",
            address=self.address,
            services=self._service_names,
            **self.calls.describe(),
        )

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.shutdown_grace)
        if self.health_server is not None:
            await self.health_server.stop(None)
        await cancel_and_wait(self._tasks)
        for close in reversed(self._cleanup):
            await close()
        log.info("stopped")

    async def run(self) -> None:
        """Serves until SIGTERM or SIGINT, then drains in-flight calls and stops."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        await self._stopping.wait()
        log.info("shutting down", grace_seconds=self.shutdown_grace)
        await self.stop()

    async def _watch_dependencies(self) -> None:
        down: set[str] = set()
        while True:
            results = await asyncio.gather(
                *(self._answers(check) for check in self._dependencies.values())
            )
            now_down = {
                name for name, up in zip(self._dependencies, results, strict=True) if not up
            }
            if now_down != down:
                if now_down:
                    log.warning("not serving: a dependency is down", down=sorted(now_down))
                else:
                    log.info("serving again: every dependency answers")
                status = (
                    health_pb2.HealthCheckResponse.NOT_SERVING
                    if now_down
                    else health_pb2.HealthCheckResponse.SERVING
                )
                for name in ("", *self._service_names):
                    await self.health.set(name, status)
                down = now_down
            await asyncio.sleep(self.dependency_check_seconds)

    async def _answers(self, check: Callable[[], Awaitable[object]]) -> bool:
        try:
            async with asyncio.timeout(self.dependency_check_seconds):
                return await check() is not False
        except Exception:
            return False


async def _supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """Restarts a background loop that crashed, with a pause, until cancelled."""
    name = getattr(loop, "__qualname__", repr(loop))
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if dependency := unavailable_dependency(error):
                log.warning(
                    "background loop stopped: dependency unavailable; restarting",
                    loop=name,
                    dependency=dependency,
                    error=type(error).__name__,
                )
            else:
                log.exception("background loop crashed; restarting", loop=name)
            await asyncio.sleep(1.0)


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Puts a deadline on every call (the caller's remaining time when there is one) and
    passes the request id and the internal token on."""

    def __init__(self, default_timeout: float, calls: InternalCalls) -> None:
        self.default_timeout = default_timeout
        self.token = calls.metadata()

    async def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = client_call_details.timeout
        if timeout is None:
            timeout = self.default_timeout
            deadline = deadline_var.get()
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        request_id = request_id_var.get()
        if request_id and REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, request_id)
        for key, value in self.token:
            metadata.add(key, value)
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


# A call that may be made twice is tried once more on UNAVAILABLE (the server restarting, its
# database away for a moment), after a short pause in which the channel reconnects.
RETRY_POLICY = {
    "maxAttempts": 2,
    "initialBackoff": "0.3s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_REPEATABLE = frozenset(
    {
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        descriptor_pb2.MethodOptions.IDEMPOTENT,
    }
)


def retry_config(*services: ServiceDescriptor) -> str:
    """The gRPC service config that retries the methods of `services` whose contract says
    they may be repeated (`option idempotency_level` in the .proto)."""
    names = [
        {"service": service.full_name, "method": method.name}
        for service in services
        for method in service.methods
        if method.GetOptions().idempotency_level in _REPEATABLE
    ]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}]})


def channel(
    target: str,
    *,
    default_timeout: float = 5.0,
    retrying: Iterable[ServiceDescriptor] = (),
    calls: InternalCalls | None = None,
) -> grpc.aio.Channel:
    """A channel with deadlines, carrying the internal token and speaking TLS when `calls`
    say so (plaintext otherwise: traffic stays inside the cluster network); the repeatable
    methods of the `retrying` services are tried once more on UNAVAILABLE."""
    calls = calls or InternalCalls()
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if services := tuple(retrying):
        options += [("grpc.enable_retries", 1), ("grpc.service_config", retry_config(*services))]
    return calls.open_channel(target, options, [_ClientInterceptor(default_timeout, calls)])


async def check_health(target_channel: grpc.aio.Channel, deadline: float = 1.0) -> bool:
    """True when the server behind the channel answers SERVING."""
    stub = health_pb2_grpc.HealthStub(target_channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def names(services: Iterable[Any]) -> list[str]:
    return [service.full_name for service in services]
