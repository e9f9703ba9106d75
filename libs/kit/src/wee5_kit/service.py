"""How every gRPC service process starts: `python -m wee5_<service> [serve|migrate]`.

`serve` migrates the service's own schema (under an advisory lock, so replicas can race) in a
child process, then builds its server with the shared resources and runs it until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wee5_kit import logging, sentry, tracing
from wee5_kit.db import create_engine, create_sessionmaker, ping
from wee5_kit.events import EventBus
from wee5_kit.grpc import GrpcServer, channel
from wee5_kit.internal_calls import InternalCalls
from wee5_kit.logging import get_logger
from wee5_kit.metrics import (
    PROBES,
    Probe,
    RpcMetrics,
    consumers_probe,
    database_pool_probe,
    serve_metrics,
)
from wee5_kit.settings import KitSettings

log = get_logger("wee5.service")


@dataclass
class Resources:
    """What a service process holds open: its database, the event bus and (if used) Redis."""

    name: str
    settings: KitSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    calls: InternalCalls
    _probe_removals: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    async def open(cls, name: str, settings: KitSettings) -> Resources:
        calls = InternalCalls.from_settings(settings)  # first: bad TLS files stop startup
        if calls.token is None and settings.production_like():
            log.warning(
                "calls between services carry no token: set WEE5_INTERNAL_TOKEN unless the "
                "network plugin enforces the chart's NetworkPolicies"
            )
        engine = create_engine(settings.database_url)
        bus = await EventBus.connect(settings.nats_url, settings.event_prefix, f"wee5-{name}")
        return cls(name, settings, engine, create_sessionmaker(engine), bus, calls)

    def add_probe(self, name: str, probe: Probe) -> None:
        """A gauge read at scrape time (wee5_kit.metrics) until the process closes."""
        self._probe_removals.append(PROBES.add(f"{self.name}.{name}", probe))

    async def close(self) -> None:
        for remove in self._probe_removals:
            remove()
        await self.bus.close()
        await self.engine.dispose()

    def server(self) -> GrpcServer:
        server = GrpcServer(
            self.name,
            host=self.settings.grpc_bind_host,
            port=self.settings.service_port(self.name),
            shutdown_grace=self.settings.shutdown_grace_seconds,
            calls=self.calls,
            interceptors=[RpcMetrics()],
        )
        server.add_cleanup(self.close)
        self.add_probe("database_pool", database_pool_probe(self.name, self.engine))
        self.add_probe("consumers", consumers_probe(self.bus))
        server.add_dependency("database", partial(ping, self.engine))
        server.add_dependency("events", self.bus.connected)
        return server

    def channel(self, service: str, retrying: Iterable[ServiceDescriptor] = ()) -> grpc.aio.Channel:
        """A channel to another service, with this process's deadline, token and TLS."""
        return channel(
            self.settings.service_addr(service),
            default_timeout=self.settings.grpc_deadline_seconds,
            retrying=retrying,
            calls=self.calls,
        )


BuildServer = Callable[[KitSettings], Awaitable[GrpcServer]]

# Generation thresholds of the cyclic garbage collector while serving (Python's: 700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_garbage_collector() -> None:
    """Freezes what startup built and makes collections rarer. What a request allocates dies
    young, freed by reference counting; at the default gen-0 threshold the collector instead
    rescanned a 1,000-activity batch's live objects dozens of times and moved them into older
    generations, and each full collection walked every module, table and descriptor as well:
    about a quarter of xp's CPU on a batch. Call it once the server is built.

    Then hands the memory that importing and building freed back to the system (glibc keeps
    freed heap pages otherwise): about 7 MB of every process's resident size."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return_freed_memory()


def migrate_apart(package: str, database_url: str) -> None:
    """Migrates the package's schema to head in a forked child process, so that Alembic and
    Mako (about 12 MB resident) are imported there and leave with it instead of staying in a
    process that serves for days. Call it before the process starts threads or an event loop
    (a fork copies only the calling thread). A failed migration ends the process here, after
    the child's traceback."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            from wee5_kit.migrations import upgrade

            upgrade(package, database_url)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            logging.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{package}: migrating the schema failed (the error is above)")


def return_freed_memory() -> None:
    """Gives the heap pages the process freed back to the system (glibc's `malloc_trim`)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): nothing to trim
        return
    libc.malloc_trim(0)


def main(name: str, settings: KitSettings, build: BuildServer) -> None:
    """The command line of a service: `serve` (default) or `migrate`."""
    parser = argparse.ArgumentParser(prog=f"python -m wee5_{name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--no-migrate", action="store_true", help="serve without migrating first")
    args = parser.parse_args()
    logging.configure(
        name, settings.log_level, extra=[*tracing.log_processors(), *sentry.log_processors()]
    )
    log = logging.get_logger(f"wee5.{name}")
    if args.command == "migrate" or not args.no_migrate:
        migrate_apart(f"wee5_{name}", settings.database_url)
        log.info("schema migrated", schema=name)
    if args.command == "serve":
        asyncio.run(_serve(name, settings, build))


async def _serve(name: str, settings: KitSettings, build: BuildServer) -> None:
    # Inside the loop (Sentry's asyncio integration patches it) and before the server and
    # channels are built (the gRPC integrations and instrumentation hook their construction).
    sentry.start_error_reporting(name)
    tracing.start_tracing(name, settings.environment)
    server = await build(settings)
    if settings.metrics_port is not None:
        stop_metrics = serve_metrics(
            settings.metrics_port,
            settings.metrics_bind_host,
            cache_seconds=settings.metrics_cache_seconds,
        )

        async def stop_serving_metrics() -> None:
            await asyncio.to_thread(stop_metrics)

        server.add_cleanup(stop_serving_metrics)
    tune_garbage_collector()
    await server.run()
