"""Settings of the gateway, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from wee5_kit.settings import KitSettings


class GatewaySettings(KitSettings):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8000
    # The Whop dashboard's webhook secret (`ws_…`); Whop webhooks are refused until it is set.
    whop_webhook_secret: SecretStr | None = None
    # How long /readyz waits for each dependency before calling it down.
    readiness_timeout_seconds: float = 1.0

    # HMAC key signing access tokens (JWT, HS256). Unset: a random key per process, which is
    # fine for one local gateway but logs everyone out on restart; always set it in production.
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    # Browsers get the tokens as httpOnly cookies too when they ask; Secure unless developing
    # over plain http.
    cookie_secure: bool = True
