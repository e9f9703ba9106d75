"""Per-member cooldowns in Redis, checked and set in one round trip."""

from __future__ import annotations

from redis.asyncio import Redis

from wee5_kit.redis import Keys


class Cooldowns:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def cooldown_key(self, community_id: str, user_id: str, kind: str) -> str:
        return self.keys("cooldown", community_id, user_id, kind)

    async def claim(self, key: str, seconds: int) -> bool:
        """True if no cooldown was running; it runs from now on. `SET NX EX` is atomic, so of
        two concurrent activities exactly one wins."""
        if seconds <= 0:
            return True
        return bool(await self.redis.set(key, "1", nx=True, ex=seconds))

    async def claim_many(self, claims: list[tuple[str, int]]) -> list[bool]:
        """`claim` for several (key, seconds) in one round trip, in order: of two claims of
        one key, the first wins."""
        if not claims:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, seconds in claims:
                pipe.set(key, "1", nx=True, ex=seconds)
            return [bool(won) for won in await pipe.execute()]

    async def release(self, keys: list[str]) -> None:
        """Gives back cooldowns claimed by a transaction that then failed, so a retry can earn."""
        if keys:
            await self.redis.delete(*keys)
