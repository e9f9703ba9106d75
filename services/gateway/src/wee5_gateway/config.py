"""Settings of the gateway, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr

from wee5_kit.settings import KitSettings


class GatewaySettings(KitSettings):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8000
    # The Whop dashboard's webhook secret (`ws_…`); Whop webhooks are refused until it is set.
    whop_webhook_secret: SecretStr | None = None
    # How long /readyz waits for each dependency before calling it down.
    readiness_timeout_seconds: float = 1.0
