"""`make fuzz`: schemathesis against the served OpenAPI document of the real processes.

Starts the platform the way `make up` does (tests/support/stack.py), in a database, Redis
prefix and NATS prefix of its own, creates a platform-admin account so that authorised routes
get exercised past their access checks, and runs `schemathesis run` with a bounded number of
examples per operation and the `not_a_server_error` check. Rate limits are raised far above
what the run sends, so requests reach the handlers instead of stopping at 429.

Prints how many requests schemathesis sent and how many answered 5xx (from its HAR report),
cross-checked with the gateway's own access log, and exits non-zero on any 5xx.

    uv run python -m scripts.fuzz [--max-examples N] [--workers N] [--seed N] [-- extra args]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from nacl.encoding import HexEncoder
from nacl.signing import SigningKey
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import grant_platform_admin
from tests.support.gateway import bearer, new_account
from tests.support.stack import start_stack, stop_stack
from tests.support.stripe import API_KEY as STRIPE_KEY
from tests.support.stripe import WEBHOOK_SECRET as STRIPE_WEBHOOK_SECRET
from tests.support.stripe import StripeServer
from wee5_gateway.config import GatewaySettings
from wee5_kit.db import create_engine, create_sessionmaker

RUN = uuid.uuid4().hex[:6]
DATABASE = "wee5_fuzz"
UNLIMITED = "1000000/minute"


def fuzz_env() -> dict[str, str]:
    pg = os.environ.get("WEE5_TEST_PG", "postgres:postgres@127.0.0.1:5432")
    return {
        "WEE5_DATABASE_URL": f"postgresql+asyncpg://{pg}/{DATABASE}",
        "WEE5_REDIS_URL": os.environ.get("WEE5_FUZZ_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "WEE5_REDIS_PREFIX": f"fuzz{RUN}",
        "WEE5_EVENT_PREFIX": f"fuzz{RUN}",
        "WEE5_LOG_LEVEL": "INFO",
        "WEE5_JWT_SECRET": f"fuzz-jwt-secret-{RUN}-{RUN}-{RUN}-{RUN}",
        "WEE5_GRPC_DEADLINE_SECONDS": "5",
        # Discord's interactions route checks signatures (401) instead of answering that it
        # is not configured (503); nothing the fuzzer sends is signed with its private half.
        "WEE5_DISCORD_PUBLIC_KEY": SigningKey.generate().verify_key.encode(HexEncoder).decode(),
        **{
            f"WEE5_RATE_LIMIT_{name}": UNLIMITED
            for name in ("AUTH", "WEBHOOK_BAD_SIGNATURE", "READ", "WRITE", "ACTIVITIES")
        },
    }


async def reset_database(url: str) -> None:
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    await admin.dispose()


async def platform_admin_header(env: dict[str, str]) -> dict[str, str]:
    """A real account (so routes that look the caller up find it) with a platform-admin token."""
    engine = create_engine(env["WEE5_DATABASE_URL"], pool_size=1)
    try:
        account_id = await new_account(create_sessionmaker(engine))
    finally:
        await engine.dispose()
    await grant_platform_admin(env["WEE5_DATABASE_URL"], account_id)
    settings = GatewaySettings(jwt_secret=env["WEE5_JWT_SECRET"])
    return bearer(settings, account_id, platform_admin=True)


async def drop_redis_keys(env: dict[str, str]) -> None:
    client: Redis = Redis.from_url(env["WEE5_REDIS_URL"])
    async for key in client.scan_iter(match=f"{env['WEE5_REDIS_PREFIX']}:*", count=1000):
        await client.delete(key)
    await client.aclose()


def har_statuses(har: Path) -> list[tuple[str, str, int]]:
    """(method, url, status) of every request in schemathesis's HAR report."""
    if not har.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(har.read_text())["log"]["entries"]
    return [
        (e["request"]["method"], e["request"]["url"], int(e["response"]["status"])) for e in entries
    ]


def access_log_statuses(log: Path) -> Counter[int]:
    """Status of every request in the gateway's access log (JSON lines, prefixed by scripts/up.py)."""
    statuses: Counter[int] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        _, brace, rest = line.partition("{")
        if not brace:
            continue
        try:
            record = json.loads(brace + rest)
        except json.JSONDecodeError:
            continue
        if record.get("event") == "request" and record.get("path") != "/readyz":
            statuses[int(record["status"])] += 1
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    # One worker: with several threads, CPython 3.11.7 intermittently fails hypothesis with
    # "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905).
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="more `schemathesis run` arguments, after --")
    args = parser.parse_args()

    env = fuzz_env()
    asyncio.run(reset_database(env["WEE5_DATABASE_URL"]))
    workdir = Path(tempfile.mkdtemp(prefix="wee5-fuzz-"))
    har = workdir / "schemathesis.har"
    # Stripe is a local stand-in, so that checkout and its webhooks answer as configured
    # (without Stripe they answer 503 by design, which this run counts as a failure).
    stripe_server = StripeServer()
    stripe = stripe_server.__enter__()
    env.update(
        WEE5_STRIPE_SECRET_KEY=STRIPE_KEY,
        WEE5_STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        WEE5_STRIPE_API_BASE=stripe.base_url,
        WEE5_STRIPE_PRICE_PREMIUM_MONTHLY="price_premium_monthly",
        WEE5_STRIPE_PRICE_PREMIUM_YEARLY="price_premium_yearly",
        WEE5_STRIPE_PRICE_ENTERPRISE_MONTHLY="price_enterprise_monthly",
        WEE5_STRIPE_PRICE_ENTERPRISE_YEARLY="price_enterprise_yearly",
        # The bot's install flow is configured (without it, starting an install answers 503
        # by design); a callback never reaches Discord without a state this run cannot forge.
        WEE5_DISCORD_CLIENT_ID="123456789012345678",
        WEE5_DISCORD_CLIENT_SECRET="fuzz-discord-client-secret",
        WEE5_DISCORD_API_URL="http://127.0.0.1:9/api/v10",
    )
    stack = start_stack(env, workdir)
    try:
        headers = asyncio.run(platform_admin_header(env))
        command = [
            "schemathesis",
            "run",
            f"{stack.base_url}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(args.max_examples),
            "--workers",
            str(args.workers),
            "--seed",
            str(args.seed),
            "--request-timeout",
            "30",
            "--report",
            "har",
            "--report-har-path",
            str(har),
            *(arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")),
            *args.extra,
        ]
        shown = [
            a if not a.startswith("Authorization") else "Authorization: Bearer …" for a in command
        ]
        print("fuzz:", " ".join(shown), flush=True)
        returncode = subprocess.run(command, check=False).returncode
    finally:
        stop_stack(stack)
        stripe_server.__exit__(None, None, None)
        asyncio.run(drop_redis_keys(env))

    sent = har_statuses(har)
    server_errors = [(m, u, s) for m, u, s in sent if s >= 500]
    logged = access_log_statuses(stack.log)
    by_class = Counter(f"{s // 100}xx" for _, _, s in sent)
    print(
        f"\nfuzz: schemathesis sent {len(sent)} requests "
        f"({', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))}); "
        f"{len(server_errors)} answered 5xx"
    )
    print(
        f"fuzz: the gateway logged {sum(logged.values())} requests, "
        f"{sum(n for s, n in logged.items() if s >= 500)} of them 5xx (stack log: {stack.log})"
    )
    for method, url, status in server_errors[:20]:
        print(f"  {status} {method} {url}")
    if server_errors or returncode != 0 or not sent:
        print(f"fuzz: FAILED (schemathesis exit {returncode})")
        return 1
    print("fuzz: no 5xx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
