"""Settings of the gateway, from `WEE5_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from limits import parse as parse_rate_limit
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from wee5_gateway.core.whop_identity import fixed_public_key
from wee5_kit.settings import KitSettings


class GatewaySettings(KitSettings):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8000
    # The Whop dashboard's webhook secret (`ws_…`); Whop webhooks are refused until it is set.
    whop_webhook_secret: SecretStr | None = None
    # Whop sign-in (the `x-whop-user-token` of Whop's iframe): the app id (`app_…`) the tokens
    # must be for; unset, the header is ignored. Their keys come from Whop's JWKS, or a fixed
    # PEM public key when one is given (offline tests).
    whop_app_id: str | None = None
    whop_jwks_url: str = "https://api.whop.com/.well-known/jwks.json"
    whop_public_key: str | None = None
    # Whop's REST API, with the app's API key: access checks and a company's experiences.
    whop_api_url: str = "https://api.whop.com/api/v1"
    # Who may frame the Whop views (`/experiences/…`, `/dashboard/…`, `/discover`): Whop's
    # web and desktop apps (CSP frame-ancestors sources, space separated).
    whop_frame_ancestors: str = "https://whop.com https://*.whop.com"
    whop_api_key: SecretStr | None = None
    whop_api_timeout_seconds: float = Field(default=5.0, gt=0)
    # A Whop access answer is reused this long; while Whop is down, one up to
    # `whop_access_stale_seconds` old still serves (an uncached caller gets 503, never access).
    whop_access_cache_seconds: int = Field(default=60, ge=1)
    whop_access_stale_seconds: int = Field(default=24 * 3600, ge=1)
    # Receipts of acknowledged webhooks (api/webhooks/receipts.py): a redelivery is answered
    # from the ids this process saw last (at most `recent`) or from Redis (kept `ttl`, longer
    # than Whop redelivers); the Postgres rows are written behind, in batches of up to `batch`,
    # with at most `max_pending` waiting (then deliveries wait for room).
    webhook_receipt_ttl_seconds: int = Field(default=3 * 24 * 3600, ge=1)
    webhook_receipt_recent: int = Field(default=50_000, ge=0)
    webhook_receipt_batch: int = Field(default=500, ge=1, le=5000)
    webhook_receipt_max_pending: int = Field(default=20_000, ge=1)
    # Webhook activities go to xp in at most `calls` calls at once, a call beyond the first
    # only for `extra_from` waiting activities; those arriving meanwhile leave together in the
    # next call, up to `batch` per call (api/webhooks/coalescing.py). `make bench`, first
    # deliveries at 32 connections: one call out at a time made bigger batches than two
    # (456 vs 354/s); two, the second from 12 waiting, beat one (875-1,093 vs 712-903/s).
    webhook_xp_calls: int = Field(default=2, ge=1)
    webhook_xp_extra_from: int = Field(default=12, ge=1)
    webhook_xp_batch: int = Field(default=100, ge=1, le=1000)
    # How long a call that returns to few waiting activities keeps its place, so the
    # deliveries it answered can join the next one (api/webhooks/coalescing.py).
    webhook_xp_hold_ms: float = Field(default=2.0, ge=0, le=100)
    # The Discord application whose bot gives roles: its OAuth2 client id and secret bind a
    # community to a Discord server through the bot's install flow (the installer must be
    # able to manage that server). Without them only a platform admin can bind a server.
    discord_client_id: str | None = None
    discord_client_secret: SecretStr | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    discord_authorize_url: str = "https://discord.com/oauth2/authorize"
    discord_api_timeout_seconds: float = Field(default=5.0, gt=0)
    # The application's public key (hex, "Public Key" in the developer portal): Discord's
    # slash command interactions (POST /webhooks/discord/interactions) are verified with it
    # and refused (503) while it is unset.
    discord_public_key: str | None = None
    # How long an install link stays valid.
    discord_install_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    # Where this gateway is reachable from the internet: the webhook URL to set in Whop.
    public_url: str = "http://127.0.0.1:8000"
    # Where browsers send the files admins upload from the resources pages (their CSP
    # `connect-src`): the resources file endpoint with local storage (the same variable the
    # resources service reads), or the S3 bucket's origin.
    resources_public_url: str = "http://127.0.0.1:8010"
    # How long /readyz waits for each dependency before calling it down.
    readiness_timeout_seconds: float = 1.0
    # How long a community's entitlements (plan and features) from billing are reused before
    # asking again; a plan set through another gateway replica shows after at most this long.
    entitlements_cache_seconds: float = Field(default=30.0, ge=0)
    # How long a community's leaderboard visibility is reused before reading it again; a
    # change made through another gateway replica shows here after at most this long.
    leaderboard_visibility_cache_seconds: float = Field(default=5.0, ge=0)
    # How long readers of the same board page or rank card share one answer from xp (fresh
    # for half of it, then served while the next is read); 0: every read asks xp.
    shared_read_seconds: float = Field(default=1.0, ge=0, le=60)

    # Seed the demo community (`demo`: named members, reward rules, a badge, an owner account
    # printed by `make up`) at startup. For local runs only (`make up` turns it on); leave it
    # off in production.
    demo: bool = False

    # HMAC key signing access tokens (JWT, HS256). Unset: a random key per process, which is
    # fine for one local gateway but logs everyone out on restart; always set it in production.
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    # Browsers get the tokens as httpOnly cookies too when they ask; Secure unless developing
    # over plain http.
    cookie_secure: bool = True

    # The live event stream (SSE): a comment this often keeps proxies from closing a quiet
    # stream; at most this many open streams per gateway process (more answer 503); the
    # reconnection delay suggested to browsers; how often to look again for an event stream
    # (a context's JetStream stream) that does not exist yet.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    stream_max_connections: int = Field(default=1000, ge=1)
    stream_retry_ms: int = Field(default=3000, ge=0)
    stream_missing_retry_seconds: float = Field(default=5.0, gt=0)
    # Open streams one caller (account, API key, Whop user) may hold on one gateway process;
    # more answer 429. A browser needs one per open tab.
    stream_max_per_principal: int = Field(default=5, ge=1)
    # How far back a Last-Event-ID may resume, in events of one context's stream (every
    # community's): an older cursor, or one whose events the stream's retention removed,
    # gets a `reset` event and starts with what is new, instead of a replay of the history.
    stream_resume_max_events: int = Field(default=10_000, ge=0)
    # The gateway follows the event streams only while someone listens: it stops this long
    # after its last open stream closed (a page reload does not restart them).
    stream_idle_seconds: float = Field(default=60.0, gt=0)

    # Rate limits per route class, as "<count>/<period>" ("10/minute", "3/2second"), counted
    # in Redis over a moving window (wee5_gateway.core.protection.rate_limits):
    # register/login/refresh per client IP;
    rate_limit_auth: str = "10/minute"
    # Whop webhooks per client IP, counting only deliveries whose signature failed;
    rate_limit_webhook_bad_signature: str = "20/minute"
    # leaderboard reads without credentials (public boards), per IP;
    rate_limit_public_read: str = "120/minute"
    # other GETs under /api/v1, and other methods, per API key or account, else per IP;
    rate_limit_read: str = "600/minute"
    rate_limit_write: str = "120/minute"
    # the activity intake, per API key.
    rate_limit_activities: str = "3000/minute"
    # Besides the per-IP budget, which rotating addresses escape (api/accounts/throttle.py):
    # failed sign-ins per email; past it, sign-in to that email works only from a browser
    # that signed in to it before (the `wee5_device` cookie) until the window frees up;
    rate_limit_login_failures_per_email: str = "10/15minute"
    # registrations per email;
    rate_limit_register_per_email: str = "5/hour"
    # token refreshes per account (a session refreshes every 15 minutes).
    rate_limit_refresh_per_account: str = "30/minute"
    # Larger request bodies answer 413.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Browser origins allowed to call the API (CORS), comma-separated, e.g.
    # "https://app.example.com,https://admin.example.com"; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: comma-separated IPs or CIDRs, "*" for any). The client IP that rate
    # limits count comes from there; set it to the load balancer's addresses in production.
    trusted_proxies: str = "127.0.0.1"

    @field_validator(
        "rate_limit_auth",
        "rate_limit_webhook_bad_signature",
        "rate_limit_public_read",
        "rate_limit_read",
        "rate_limit_write",
        "rate_limit_activities",
        "rate_limit_login_failures_per_email",
        "rate_limit_register_per_email",
        "rate_limit_refresh_per_account",
    )
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        parse_rate_limit(value)  # raises ValueError on anything but "<count>/<period>"
        return value

    @field_validator("whop_public_key")
    @classmethod
    def _whop_public_key_parses(cls, value: str | None) -> str | None:
        if value:
            fixed_public_key(value)  # raises ValueError naming the setting
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value
