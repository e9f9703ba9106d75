"""`python -m wee5_gateway [serve|migrate] [--no-migrate]`, and
`python -m wee5_gateway grant-platform-admin ACCOUNT_ID` to make the first platform admin (an
account id, not an email: an email is ambiguous before it is verified).

`serve` migrates the gateway schema (under the kit's advisory lock, so replicas can race), then
serves HTTP with uvicorn until SIGTERM, letting in-flight requests finish.
"""

from __future__ import annotations

import wee5_gateway.lean  # noqa: F401  (before the imports below: see it and wee5_kit.lean)

# isort: split
import argparse
import asyncio
import socket
import uuid
from typing import Any

import uvicorn
from litestar import Litestar

from wee5_gateway.api.stream import end_live_streams
from wee5_gateway.app import create_app
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.observability import start_observability, traced
from wee5_gateway.db.repository import make_platform_admin
from wee5_kit import logging, sentry, tracing
from wee5_kit.db import create_engine
from wee5_kit.metrics import serve_metrics
from wee5_kit.service import migrate_apart, return_freed_memory, tune_garbage_collector


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wee5_gateway")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "grant-platform-admin", "revoke-platform-admin"],
    )
    parser.add_argument(
        "account_id",
        nargs="?",
        help="with grant-/revoke-platform-admin: the account's id (a UUID)",
    )
    parser.add_argument("--no-migrate", action="store_true", help="serve without migrating first")
    args = parser.parse_args()

    settings = GatewaySettings()
    logging.configure(
        "gateway", settings.log_level, extra=[*tracing.log_processors(), *sentry.log_processors()]
    )
    log = logging.get_logger("wee5.gateway")
    if args.command in ("grant-platform-admin", "revoke-platform-admin"):
        granting = args.command == "grant-platform-admin"
        if not args.account_id:
            parser.error(f"{args.command} needs the account's id")
        try:
            account_id = uuid.UUID(args.account_id)
        except ValueError:
            parser.error(
                f"{args.account_id!r} is not an account id (a UUID, as GET /api/v1/me shows)"
            )
        if not asyncio.run(_grant_platform_admin(settings.database_url, account_id, granting)):
            raise SystemExit(f"no account with id {account_id}; register it first")
        if granting:
            log.info("platform admin granted; it takes effect at the account's next sign-in")
        else:
            log.info("platform admin revoked; every gateway refuses it within 30 seconds")
        return
    if args.command == "migrate" or not args.no_migrate:
        migrate_apart("wee5_gateway.db", settings.database_url)
        log.info("schema migrated", schema="gateway")
    if args.command != "serve":
        return

    if settings.whop_webhook_secret is None or not settings.whop_webhook_secret.get_secret_value():
        log.warning("Whop webhooks are off until WEE5_WHOP_WEBHOOK_SECRET is set")
    shown_host = (
        "127.0.0.1" if settings.gateway_host in ("0.0.0.0", "::") else settings.gateway_host
    )
    server = _Server(
        f"http://{shown_host}:{settings.gateway_port}",
        settings,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        lifespan="on",
        access_log=False,
        server_header=False,
        # The client address (rate limits count per IP) and scheme (HSTS) come from
        # X-Forwarded-For/-Proto only when the peer is one of these proxies.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        # Longer than the idle timeout of common load balancers (60 s), so that they, not
        # we, close idle connections: no race on a connection the client is reusing.
        timeout_keep_alive=75,
    )
    if settings.metrics_port is not None:
        serve_metrics(
            settings.metrics_port,
            settings.metrics_bind_host,
            cache_seconds=settings.metrics_cache_seconds,
        )
    # uvicorn handles SIGTERM/SIGINT: stops accepting, drains, then runs the shutdown lifespan.
    server.run()


async def _grant_platform_admin(database_url: str, account_id: uuid.UUID, admin: bool) -> bool:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            return await make_platform_admin(connection, account_id, admin=admin)
    finally:
        await engine.dispose()


class _Server(uvicorn.Server):
    """uvicorn's server of the app it builds inside its event loop, saying where it listens
    once the socket is bound, and ending the live streams as it starts to drain (they would
    hold it for the whole grace period)."""

    def __init__(self, url: str, settings: GatewaySettings, **config: Any) -> None:
        super().__init__(uvicorn.Config(self._build_app, factory=True, **config))
        self.url = url
        self.settings = settings
        self.app: Litestar | None = None

    def _build_app(self) -> Litestar:
        # uvicorn calls this inside its running loop, before serving: Sentry's asyncio
        # integration needs that loop, and its Litestar integration must see the app built.
        start_observability(self.settings)
        self.app = traced(create_app(self.settings))
        tune_garbage_collector()  # after the app is built: see wee5_kit.service
        return self.app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        return_freed_memory()  # what connecting and warming up at startup freed
        if self.started:
            logging.get_logger("wee5.gateway").info(
                "gateway listening", url=self.url, openapi=f"{self.url}/schema"
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_live_streams(self.app)
        await super().shutdown(sockets)


if __name__ == "__main__":
    main()
