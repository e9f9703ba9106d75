"""`make reset` against the real Postgres, Redis and NATS: what the local platform stored under
its names goes, what another prefix stored stays."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NotFoundError
from redis.asyncio import Redis
from sqlalchemy import make_url

from tests.conftest import free_port
from tests.support.stack import ROOT
from wee5_kit.db import ensure_database, remove_database
from wee5_kit.events import EventBus

Local = dict[str, str]


@pytest.fixture
async def local(test_env: dict[str, str], redis: Redis, bus: EventBus) -> AsyncIterator[Local]:
    """A local platform's data under names of its own: a database, Redis keys, a stream."""
    name = f"reset{uuid.uuid4().hex[:8]}"
    url = make_url(test_env["WEE5_DATABASE_URL"]).set(database=f"wee5_test_{name}")
    env = {
        **test_env,
        "WEE5_DATABASE_URL": url.render_as_string(hide_password=False),
        "WEE5_REDIS_PREFIX": name,
        "WEE5_EVENT_PREFIX": name,
        "WEE5_GATEWAY_PORT": str(free_port()),
    }
    await ensure_database(env["WEE5_DATABASE_URL"])
    await redis.set(f"{name}:lb:demo:all", "stale board")
    await redis.set(f"{name}x:lb:demo:all", "another prefix")
    mine = await EventBus.connect(test_env["WEE5_NATS_URL"], name, "tests")
    theirs = await EventBus.connect(test_env["WEE5_NATS_URL"], f"{name}x", "tests")
    await mine.ensure_stream("xp")
    await theirs.ensure_stream("xp")
    yield env
    await remove_database(env["WEE5_DATABASE_URL"])
    await redis.delete(f"{name}x:lb:demo:all")
    for each in (mine, theirs):
        try:
            await each.js.delete_stream(each.stream_name("xp"))
        except NotFoundError:
            pass
        await each.close()


def make_reset(env: Local) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "reset"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _stream_exists(bus: EventBus, prefix: str) -> bool:
    try:
        await bus.js.stream_info(f"{prefix}_XP".upper())
    except NotFoundError:
        return False
    return True


async def _database_exists(env: Local) -> bool:
    created = await ensure_database(env["WEE5_DATABASE_URL"])
    return not created


async def test_make_reset_drops_the_database_the_keys_and_the_streams_of_its_prefix(
    local: Local, redis: Redis, bus: EventBus
) -> None:
    prefix = local["WEE5_REDIS_PREFIX"]

    reset = make_reset(local)

    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "dropped" in reset.stdout
    assert f"{prefix.upper()}_XP" in reset.stdout
    assert await redis.get(f"{prefix}:lb:demo:all") is None
    assert not await _stream_exists(bus, prefix)
    assert not await _database_exists(local)  # (made again by the look, dropped at teardown)
    assert await redis.get(f"{prefix}x:lb:demo:all") == "another prefix"
    assert await _stream_exists(bus, f"{prefix}x")


async def test_make_reset_refuses_in_production_and_keeps_everything(
    local: Local, redis: Redis
) -> None:
    reset = make_reset({**local, "WEE5_ENVIRONMENT": "production"})

    assert reset.returncode != 0
    assert "refused, WEE5_ENVIRONMENT=production" in reset.stderr
    assert await redis.get(f"{local['WEE5_REDIS_PREFIX']}:lb:demo:all") == "stale board"
    assert await _database_exists(local)


async def test_reset_finds_the_streams_of_its_prefix_past_jetstreams_first_page(
    test_env: dict[str, str], bus: EventBus
) -> None:
    # JetStream lists streams 256 at a time: a server holding more (other prefixes, earlier
    # runs) must not hide some of this prefix's.
    from scripts.reset import delete_streams

    name = f"pages{uuid.uuid4().hex[:8]}"
    mine = await EventBus.connect(test_env["WEE5_NATS_URL"], name, "tests")
    theirs = await EventBus.connect(test_env["WEE5_NATS_URL"], f"{name}x", "tests")
    contexts = [f"c{n}" for n in range(260)]
    try:
        for context in contexts:
            await mine.ensure_stream(context)
        await theirs.ensure_stream("xp")

        deleted = await delete_streams(test_env["WEE5_NATS_URL"], name)

        assert sorted(deleted) == sorted(mine.stream_name(c) for c in contexts)
        assert await _stream_exists(bus, f"{name}x")
    finally:
        for each, names in ((mine, contexts), (theirs, ["xp"])):
            for context in names:
                try:
                    await each.js.delete_stream(each.stream_name(context))
                except NotFoundError:
                    pass
            await each.close()
