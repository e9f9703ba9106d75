"""`make reset`: forgets everything the local platform stored — drops its database, deletes
the Redis keys under its prefix (boards, cooldowns, caches) and the NATS JetStream streams of
its event prefix (with their consumers) — so the next `make up` starts empty.

It reads the same WEE5_* settings as `make up`, touches nothing of another prefix, refuses in
a production-like environment (WEE5_ENVIRONMENT) and while the gateway still answers.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
from nats.js.api import StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from wee5_kit.db import remove_database
from wee5_kit.events import EventBus
from wee5_kit.redis import create_redis
from wee5_kit.settings import KitSettings


async def delete_redis_keys(url: str, prefix: str) -> int:
    redis = create_redis(url)
    deleted = 0
    try:
        batch: list[str] = []
        async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += await redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await redis.unlink(*batch)
    finally:
        await redis.aclose()
    return deleted


async def delete_streams(url: str, prefix: str) -> list[str]:
    """The streams whose subjects are all under `<prefix>.`: those of this prefix only."""
    bus = await EventBus.connect(url, prefix, "wee5-reset")
    deleted = []
    try:
        for stream in await all_streams(bus.js):
            subjects = stream.config.subjects or []
            if subjects and all(s.startswith(f"{prefix}.") for s in subjects):
                try:
                    await bus.js.delete_stream(stream.config.name or "")
                except NotFoundError:
                    continue
                deleted.append(stream.config.name or "")
    finally:
        await bus.close()
    return deleted


async def all_streams(js: JetStreamContext) -> list[StreamInfo]:
    """Every stream of the server: JetStream lists them a page (256) at a time."""
    streams: list[StreamInfo] = []
    while page := await js.streams_info(offset=len(streams)):
        streams.extend(page)
    return streams


def gateway_answers(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def reset(settings: KitSettings) -> None:
    database = settings.database_url.rsplit("/", 1)[-1]
    dropped = await remove_database(settings.database_url)
    print(f"reset: database {database} {'dropped' if dropped else 'was not there'}", flush=True)
    keys = await delete_redis_keys(settings.redis_url, settings.redis_prefix)
    print(f"reset: {keys} Redis keys under {settings.redis_prefix}: deleted", flush=True)
    streams = await delete_streams(settings.nats_url, settings.event_prefix)
    print(f"reset: NATS streams deleted: {', '.join(streams) or 'none'}", flush=True)


def main() -> int:
    settings = KitSettings()
    if settings.production_like():
        print(f"reset: refused, WEE5_ENVIRONMENT={settings.environment}", file=sys.stderr)
        return 1
    port = os.environ.get("WEE5_GATEWAY_PORT", "8000")
    if gateway_answers(port):
        print(
            f"reset: refused, a gateway answers on port {port}: stop `make up` first",
            file=sys.stderr,
        )
        return 1
    asyncio.run(reset(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
