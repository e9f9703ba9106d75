"""Typed settings read once from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KitSettings(BaseSettings):
    """Infrastructure every process shares. Services subclass it with their own fields."""

    model_config = SettingsConfigDict(env_prefix="WEE5_", extra="ignore", frozen=True)

    # Where this runs: "development" (a developer's machine, the default), "staging" or
    # "production". Local conveniences (WEE5_DEV_PLAN) are refused outside development.
    environment: str = "development"
    log_level: str = "INFO"
    database_url: str = "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/wee5"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key starts with this, so tests and a local stack can share one server.
    redis_prefix: str = "wee5"
    nats_url: str = "nats://127.0.0.1:4222"
    # Every NATS subject, stream and durable starts with this (tests use their own).
    event_prefix: str = "wee5"

    grpc_bind_host: str = "0.0.0.0"
    # Each service listens on the port of its own address; callers dial the address.
    xp_addr: str = "127.0.0.1:50051"
    rewards_addr: str = "127.0.0.1:50052"
    benchmarks_addr: str = "127.0.0.1:50053"
    resources_addr: str = "127.0.0.1:50054"
    billing_addr: str = "127.0.0.1:50055"
    # Deadline of a gRPC call when the caller has none of its own to pass down.
    grpc_deadline_seconds: float = 5.0
    # How long a SIGTERM waits for in-flight RPCs before cancelling them.
    shutdown_grace_seconds: float = 10.0
    # Calls between services (wee5_kit.internal_calls): a token every process sends and checks,
    # and TLS (this server's certificate and key; the CA callers check servers against; the
    # name certificates carry when it is not the host dialled). All off when unset.
    internal_token: SecretStr | None = None
    grpc_tls_cert_file: str | None = None
    grpc_tls_key_file: str | None = None
    grpc_tls_ca_file: str | None = None
    grpc_tls_server_name: str | None = None
    # With TLS on, the health service also answers in plaintext here (Kubernetes' probes).
    grpc_health_port: int | None = None

    # Prometheus `/metrics` of this process on a port of its own; unset: not served (each
    # process of a machine needs its own port; the chart sets one per container).
    metrics_port: int | None = None
    metrics_bind_host: str = "0.0.0.0"
    # Gauges read from Postgres and NATS at scrape time are reused for this long.
    metrics_cache_seconds: float = 5.0

    def production_like(self) -> bool:
        """Anywhere but a developer's machine: staging and production alike."""
        return self.environment.strip().lower() not in {"development", "dev", "local", "test"}

    def service_addr(self, service: str) -> str:
        addr: str = getattr(self, f"{service}_addr")
        return addr

    def service_port(self, service: str) -> int:
        return int(self.service_addr(service).rsplit(":", 1)[1])
