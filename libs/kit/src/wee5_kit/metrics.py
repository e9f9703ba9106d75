"""Prometheus metrics of a process, served on a port of its own (`WEE5_METRICS_PORT`).

Two kinds of metric live here:

- Counters and histograms that code moves as things happen (RPCs through `RpcMetrics`, the
  server interceptor every gRPC service runs; the services' own in their modules). Their label
  children are resolved once per label combination and kept, so a hot path pays a dict lookup
  and an increment, never a label formatting.
- Gauges of state that lives elsewhere (outbox rows waiting in Postgres, consumers' pending
  messages in JetStream, rewards by status, connection pools): `Probes` reads them when
  Prometheus scrapes, on the process's event loop, each probe under a short timeout and the
  readings cached for `WEE5_METRICS_CACHE_SECONDS`, so nothing runs when nobody scrapes and
  a scrape never waits long on a dependency that is down (its gauges are left out instead).

Labels never carry a community, user or event id: only component (xp, rewards, gateway…),
method, route, status, durable and the like, whose values are few and fixed by the code. No
metric has a `service` label: Prometheus' Kubernetes discovery sets that one on every target.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from grpc_interceptor.server import AsyncServerInterceptor
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wee5_kit.logging import get_logger
from wee5_kit.queries import outbox_backlog

log = get_logger("wee5.metrics")

# Latency buckets (seconds) for RPCs, HTTP requests and calls to providers: a millisecond to
# the 5-second default deadline, and beyond for what hit it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

K = TypeVar("K", bound=Hashable)


class TimedCalls(Generic[K]):
    """A count and a latency histogram of calls (RPCs, HTTP requests) with the same labels.
    Each key's label children are resolved once and kept: a hot path pays one dict lookup, an
    increment and an observation, never a label formatting."""

    def __init__(
        self,
        count: tuple[str, str],
        seconds: tuple[str, str],
        labels: Sequence[str],
        labels_of: Callable[[K], Sequence[str]],
    ) -> None:
        self.count = Counter(*count, labels)
        self.seconds = Histogram(*seconds, labels, buckets=LATENCY_BUCKETS)
        self._labels_of = labels_of
        self._children: dict[K, tuple[Any, Any]] = {}

    def observe(self, key: K, seconds: float) -> None:
        children = self._children.get(key)
        if children is None:
            values = self._labels_of(key)
            children = (self.count.labels(*values), self.seconds.labels(*values))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _rpc_labels(key: tuple[str, grpc.StatusCode]) -> tuple[str, str, str]:
    method_name, code = key
    service, _, rpc = method_name.strip("/").rpartition("/")
    return service, rpc, code.name


RPCS: TimedCalls[tuple[str, grpc.StatusCode]] = TimedCalls(
    (
        "wee5_grpc_server_handled_total",
        "RPCs a gRPC server finished, by service, method and status code.",
    ),
    (
        "wee5_grpc_server_handling_seconds",
        "Time a gRPC server took to answer, by service, method and status code.",
    ),
    ["grpc_service", "grpc_method", "grpc_code"],
    _rpc_labels,
)


class RpcMetrics(AsyncServerInterceptor):
    """Counts every RPC and observes its latency by method and status code. It runs outside
    the kit's own interceptor (wee5_kit.grpc), so it sees the status that one answered."""

    async def intercept(
        self,
        method: Callable[..., Any],
        request_or_iterator: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            result = method(request_or_iterator, context)
            if asyncio.iscoroutine(result):
                result = await result
            code = context.code() or grpc.StatusCode.OK
            return result
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            RPCS.observe((method_name, code), time.perf_counter() - started)


@dataclass(frozen=True)
class Reading:
    """One gauge value a probe read: the gauge's name, its help, its labels and the value."""

    name: str
    help: str
    labels: dict[str, str]
    value: float


Probe = Callable[[], Awaitable[Iterable[Reading]]]


@dataclass
class _Source:
    """The probes of one event loop (one process; several in tests) and their last readings."""

    loop: asyncio.AbstractEventLoop
    probes: dict[str, Probe] = field(default_factory=dict)
    readings: list[Reading] = field(default_factory=list)
    read_at: float = float("-inf")


class Probes(Collector):
    """Gauges read at scrape time. `add` a probe from the event loop that owns what it reads;
    a scrape (on the metrics server's thread) runs the probes on that loop."""

    def __init__(self, *, timeout: float = 2.0, cache_seconds: float = 5.0) -> None:
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._sources: dict[asyncio.AbstractEventLoop, _Source] = {}
        self._lock = threading.Lock()

    def add(self, name: str, probe: Probe) -> Callable[[], None]:
        """Registers `probe` under `name` (unique per loop) on the running loop; returns the
        function that removes it again (call it when what it reads closes)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            source = self._sources.setdefault(loop, _Source(loop))
            source.probes[name] = probe
            source.read_at = float("-inf")

        def remove() -> None:
            with self._lock:
                source.probes.pop(name, None)
                if not source.probes:
                    self._sources.pop(loop, None)

        return remove

    def describe(self) -> list[Metric]:
        # Names are known only once read; an empty description keeps the registry from
        # collecting (and so probing) when this collector is registered.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources.values())
        families: dict[str, GaugeMetricFamily] = {}
        for source in sources:
            for reading in self._read(source):
                family = families.get(reading.name)
                if family is None:
                    family = GaugeMetricFamily(
                        reading.name, reading.help, labels=list(reading.labels)
                    )
                    families[reading.name] = family
                family.add_metric(list(reading.labels.values()), reading.value)
        yield from families.values()

    def _read(self, source: _Source) -> list[Reading]:
        if time.monotonic() - source.read_at < self.cache_seconds or source.loop.is_closed():
            return source.readings
        if _running_loop() is source.loop:
            return source.readings  # collected on the loop itself: it cannot wait for itself
        future = asyncio.run_coroutine_threadsafe(self._probe_all(source), source.loop)
        try:
            source.readings = future.result(self.timeout + 1.0)
        except Exception:
            future.cancel()
            log.warning("metrics probes did not answer in time")
            return source.readings
        source.read_at = time.monotonic()
        return source.readings

    async def _probe_all(self, source: _Source) -> list[Reading]:
        names = list(source.probes)
        results = await asyncio.gather(*(self._probe(name, source.probes[name]) for name in names))
        return [reading for readings in results for reading in readings]

    async def _probe(self, name: str, probe: Probe) -> list[Reading]:
        try:
            async with asyncio.timeout(self.timeout):
                return list(await probe())
        except Exception as error:
            # What it reads is down or slow: its gauges are absent from this scrape.
            log.warning("metrics probe failed", probe=name, error=type(error).__name__)
            return []


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


PROBES = Probes()
REGISTRY.register(PROBES)


def serve_metrics(
    port: int, host: str = "0.0.0.0", *, cache_seconds: float | None = None
) -> Callable[[], None]:
    """Serves `/metrics` (the default registry, OpenMetrics when asked) on `host:port` from a
    thread of its own; returns the function that stops it."""
    if cache_seconds is not None:
        PROBES.cache_seconds = cache_seconds
    server, thread = start_http_server(port, addr=host)
    log.info("metrics served", address=f"{host}:{server.server_port}")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


# --- probes every service process has --------------------------------------------------------


def outbox_probe(
    service: str, table: Table, sessionmaker: async_sessionmaker[AsyncSession]
) -> Probe:
    """Rows of the service's outbox not yet published, and the age of the oldest (0 when
    none): what grows while NATS is away."""

    async def read() -> list[Reading]:
        async with sessionmaker() as session:
            waiting, oldest = await outbox_backlog(session, table)
        labels = {"component": service}
        return [
            Reading("wee5_outbox_waiting_rows", "Outbox rows not yet published.", labels, waiting),
            Reading(
                "wee5_outbox_oldest_age_seconds",
                "Age of the oldest outbox row not yet published (0 when none waits).",
                labels,
                float(oldest),
            ),
        ]

    return read


def database_pool_probe(service: str, engine: AsyncEngine) -> Probe:
    """Connections of the process's SQLAlchemy pool: in use, idle and its size."""

    async def read() -> list[Reading]:
        pool: Any = engine.pool
        labels = {"component": service}
        return [
            Reading(
                "wee5_db_pool_in_use_connections",
                "Postgres connections checked out of the pool.",
                labels,
                pool.checkedout(),
            ),
            Reading(
                "wee5_db_pool_idle_connections",
                "Postgres connections idle in the pool.",
                labels,
                pool.checkedin(),
            ),
            Reading(
                "wee5_db_pool_size_connections",
                "Connections the pool keeps (it may open as many again as overflow).",
                labels,
                pool.size(),
            ),
        ]

    return read


def redis_pool_probe(service: str, redis: Any) -> Probe:
    """Connections of a redis-py asyncio client's pool: in use and idle."""

    async def read() -> list[Reading]:
        pool = redis.connection_pool
        labels = {"component": service}
        return [
            Reading(
                "wee5_redis_pool_in_use_connections",
                "Redis connections in use.",
                labels,
                len(getattr(pool, "_in_use_connections", ())),
            ),
            Reading(
                "wee5_redis_pool_idle_connections",
                "Redis connections idle in the pool.",
                labels,
                len(getattr(pool, "_available_connections", ())),
            ),
        ]

    return read


def consumers_probe(bus: Any) -> Probe:
    """Per durable consumer of the process (an `EventBus`'s `durables`): messages not yet
    delivered, delivered but not acknowledged, and redelivered but not yet acknowledged."""

    async def read() -> list[Reading]:
        readings = []
        for durable, stream in list(bus.durables.items()):
            info = await bus.js.consumer_info(stream, durable)
            labels = {"durable": durable}
            readings += [
                Reading(
                    "wee5_consumer_pending_messages",
                    "Messages of the stream the durable consumer has not been given yet.",
                    labels,
                    info.num_pending or 0,
                ),
                Reading(
                    "wee5_consumer_ack_pending_messages",
                    "Messages delivered to the durable consumer and not acknowledged yet.",
                    labels,
                    info.num_ack_pending or 0,
                ),
                Reading(
                    "wee5_consumer_redelivered_messages",
                    "Messages delivered more than once and not acknowledged yet.",
                    labels,
                    info.num_redelivered or 0,
                ),
            ]
        return readings

    return read


EVENTS_HANDLED = Counter(
    "wee5_events_handled_total",
    "Events a durable consumer finished with, by outcome: handled, duplicate (handled "
    "before), retried (handler failed, redelivered later), dead_lettered, undecodable.",
    ["durable", "outcome"],
)
EVENT_REDELIVERIES = Counter(
    "wee5_events_redelivered_total",
    "Deliveries of an event to a durable consumer after its first.",
    ["durable"],
)
