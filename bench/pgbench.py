"""The yardstick of `make bench`: Postgres's own pgbench running the award path's SQL one
event per transaction (what ingest would cost without group commit), against a scratch
database migrated with the real xp schema, so tables, indexes and constraints are the same.

It does strictly less than WEE5 does per event (no HTTP, signature, receipt, gRPC, Redis
cooldown or leaderboard), so the ratio of the two understates what group commit buys.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from wee5_kit.migrations import upgrade

# Of this run: benches of several checkouts may run at once.
SCRATCH_DATABASE = f"wee5_pgbench_{uuid.uuid4().hex[:6]}"

# One Whop message, as one transaction: the activity row, the member's totals, the ledger
# entry, the day/week/month XP and the xp.awarded outbox row.
ONE_EVENT_PER_TRANSACTION = r"""
\set uid random(1, :members)
BEGIN;
INSERT INTO xp.activities (community_id, user_id, kind, source, idempotency_key, xp_awarded)
  VALUES ('exp_pgbench', 'user_' || :uid, 'message', 'whop', gen_random_uuid()::text, 20)
  ON CONFLICT (community_id, source, idempotency_key) DO NOTHING;
INSERT INTO xp.members AS m (community_id, user_id, xp, level, highest_level, messages, posts,
                             reactions, custom, current_streak, longest_streak, reached_at,
                             last_active_day, last_activity_at)
  VALUES ('exp_pgbench', 'user_' || :uid, 20, 1, 1, 1, 0, 0, 0, 1, 1, clock_timestamp(),
          current_date, now())
  ON CONFLICT (community_id, user_id) DO UPDATE
  SET xp = m.xp + 20, messages = m.messages + 1, reached_at = clock_timestamp(),
      last_activity_at = now(), updated_at = now();
INSERT INTO xp.ledger (community_id, user_id, delta, reason, source, balance_after,
                       level_before, level_after, day)
  SELECT community_id, user_id, 20, 'message', 'whop', xp, level, level, current_date
    FROM xp.members WHERE community_id = 'exp_pgbench' AND user_id = 'user_' || :uid;
INSERT INTO xp.period_xp AS p (community_id, period, period_start, user_id, xp, reached_at)
  VALUES ('exp_pgbench', 'day', current_date, 'user_' || :uid, 20, clock_timestamp()),
         ('exp_pgbench', 'week', date_trunc('week', current_date)::date, 'user_' || :uid, 20,
          clock_timestamp()),
         ('exp_pgbench', 'month', date_trunc('month', current_date)::date, 'user_' || :uid, 20,
          clock_timestamp())
  ON CONFLICT (community_id, period, period_start, user_id) DO UPDATE
  SET xp = p.xp + excluded.xp, reached_at = excluded.reached_at;
INSERT INTO xp.outbox (event_id, subject, payload)
  VALUES (gen_random_uuid(), 'xp.awarded', '\x0a00'::bytea);
END;
"""


@dataclass(frozen=True)
class PgbenchResult:
    transactions: int
    tps: float
    p50_ms: float
    p99_ms: float


def _latencies_ms(folder: Path) -> list[float]:
    """Each pgbench log line: client, transaction, latency in µs, script, epoch, µs."""
    return [
        int(line.split()[2]) / 1000
        for log in folder.glob("tx*")
        for line in log.read_text().splitlines()
        if line.strip()
    ]


async def _on_server(url: str, *statements: str) -> None:
    """Runs statements (CREATE/DROP DATABASE) on the server of `url`, outside a transaction."""
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await admin.dispose()


async def _scratch_database(url: str) -> str:
    await _on_server(
        url,
        f"DROP DATABASE IF EXISTS {SCRATCH_DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {SCRATCH_DATABASE}",
    )
    scratch = make_url(url).set(database=SCRATCH_DATABASE).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, "wee5_xp", scratch)
    return scratch


async def run_pgbench(
    database_url: str, *, clients: int, seconds: int, members: int
) -> PgbenchResult:
    """pgbench with the one-event-per-transaction script against a scratch database."""
    binary = shutil.which("pgbench")
    if binary is None:
        raise RuntimeError("pgbench is not installed (Debian: postgresql-contrib)")
    scratch = make_url(await _scratch_database(database_url))
    try:
        with tempfile.TemporaryDirectory(prefix="wee5-pgbench-") as tmp:
            script = Path(tmp) / "one_event.sql"
            script.write_text(ONE_EVENT_PER_TRANSACTION)
            env = {**os.environ, "PGPASSWORD": scratch.password or ""}
            command = [
                binary,
                "-n",  # no vacuum of pgbench's own tables (we have none)
                "-h", scratch.host or "127.0.0.1",
                "-p", str(scratch.port or 5432),
                "-U", scratch.username or "postgres",
                "-c", str(clients),
                "-j", str(min(clients, os.cpu_count() or 2)),
                "-T", str(seconds),
                "-D", f"members={members}",
                "-f", str(script),
                "-l", "--log-prefix", str(Path(tmp) / "tx"),
                scratch.database or SCRATCH_DATABASE,
            ]  # fmt: skip
            done = await asyncio.to_thread(
                subprocess.run, command, env=env, capture_output=True, text=True, timeout=600
            )
            if done.returncode != 0:
                raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
            latencies = await asyncio.to_thread(_latencies_ms, Path(tmp))
        tps = next(
            float(line.split("=")[1].split()[0])
            for line in done.stdout.splitlines()
            if line.startswith("tps")
        )
        cuts = statistics.quantiles(latencies, n=100)
        return PgbenchResult(len(latencies), tps, cuts[49], cuts[98])
    finally:
        await _on_server(database_url, f"DROP DATABASE IF EXISTS {SCRATCH_DATABASE} WITH (FORCE)")
