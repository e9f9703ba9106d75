"""The Redis client, with every key under the configured prefix."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    # A Redis that is down is told at once (refused) or within 2 s (unreachable host).
    client: Redis = Redis.from_url(
        url, decode_responses=True, health_check_interval=30, socket_connect_timeout=2
    )
    return client


class Keys:
    """Builds keys as `<prefix>:<part>:<part>…`, so tests and a local stack never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))
