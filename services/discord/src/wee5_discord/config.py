"""Settings of the Discord bot, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr

from wee5_kit.settings import KitSettings


class DiscordSettings(KitSettings):
    # Without a token the bot is off: `python -m wee5_discord` says so and exits 0.
    discord_bot_token: SecretStr | None = None
    # Discord's REST API (the Gateway's URL is what `GET /gateway/bot` answers).
    discord_api_url: str = "https://discord.com/api/v10"
    # Shards of the whole bot and the ones this process runs (e.g. "0,1"); unset: Discord's
    # recommended count, all in this process.
    discord_shard_count: int | None = None
    discord_shard_ids: str = ""
    # The privileged MESSAGE_CONTENT intent: only with it does Discord send a message's text,
    # whose length (never the text) goes to xp for a community's minimum message length.
    # Without it every message has length 0 (leave the minimum at 0).
    discord_message_content: bool = False
    # Welcome members who join (message in the community's welcome channel, onboarding DM):
    # needs the privileged GUILD_MEMBERS intent, enabled for the bot in Discord's portal.
    discord_welcomes: bool = False
    # Attempts of one welcome (or DM) on Discord's 5xx, 429 and network errors; first wait.
    discord_welcome_attempts: int = 5
    discord_welcome_backoff_seconds: float = 1.0
    # Activities are sent to xp in batches of at most this many, at least this often.
    discord_batch_size: int = 200
    discord_batch_seconds: float = 1.0
    # How long the answer to "which community is guild G" (rewards) is reused.
    discord_guild_cache_seconds: float = 60.0

    # `/healthz` (the process runs) and `/readyz` (every shard connected) over HTTP for
    # Kubernetes' probes; unset: not served.
    discord_health_port: int | None = None
    discord_health_host: str = "0.0.0.0"

    def shard_ids(self) -> list[int] | None:
        ids = [int(part) for part in self.discord_shard_ids.split(",") if part.strip()]
        return ids or None
