"""How the services know a gRPC call comes from one of their own: a shared token in every
call's metadata, and TLS on the connection (the caller checks the server's certificate
against a CA). Both are off unless configured; NetworkPolicies alone keep strangers out where
the network plugin enforces them, and these are for where it does not.

The health service stays open without the token, since Kubernetes' gRPC probes send no
metadata; with TLS on, it is also served in plaintext on a port of its own (`health_port`),
since those probes cannot speak TLS either.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from wee5_kit.settings import KitSettings

TOKEN_HEADER = "authorization"
_SCHEME = "Bearer "
HEALTH_PREFIX = "/grpc.health.v1.Health/"


class InternalCallsMisconfigured(ValueError):
    """TLS settings that cannot work (a certificate without its key, an unreadable file)."""


@dataclass(frozen=True)
class InternalCalls:
    """The token and TLS material one process uses to serve and to call its peers."""

    token: str | None = None
    cert_chain: bytes | None = None  # this server's certificate (PEM, chain)
    private_key: bytes | None = None
    ca: bytes | None = None  # what callers trust
    server_name: str | None = None  # the name certificates are checked against, if not the host
    health_port: int | None = None

    @classmethod
    def from_settings(cls, settings: KitSettings) -> InternalCalls:
        token = settings.internal_token.get_secret_value() if settings.internal_token else None
        cert, key, ca = (
            _read(name, path)
            for name, path in (
                ("WEE5_GRPC_TLS_CERT_FILE", settings.grpc_tls_cert_file),
                ("WEE5_GRPC_TLS_KEY_FILE", settings.grpc_tls_key_file),
                ("WEE5_GRPC_TLS_CA_FILE", settings.grpc_tls_ca_file),
            )
        )
        if (cert is None) != (key is None):
            raise InternalCallsMisconfigured(
                "WEE5_GRPC_TLS_CERT_FILE and WEE5_GRPC_TLS_KEY_FILE go together"
            )
        return cls(
            token=token or None,
            cert_chain=cert,
            private_key=key,
            ca=ca,
            server_name=settings.grpc_tls_server_name,
            health_port=settings.grpc_health_port,
        )

    @property
    def serves_tls(self) -> bool:
        return self.cert_chain is not None

    @property
    def calls_tls(self) -> bool:
        return self.ca is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if self.cert_chain is None or self.private_key is None:
            return None
        return grpc.ssl_server_credentials([(self.private_key, self.cert_chain)])

    def open_channel(
        self, target: str, options: list[tuple[str, Any]], interceptors: list[Any]
    ) -> grpc.aio.Channel:
        """A channel to `target`: over TLS checked against the CA when one is configured."""
        if self.ca is None:
            return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        if self.server_name:
            options = [*options, ("grpc.ssl_target_name_override", self.server_name)]
        return grpc.aio.secure_channel(
            target,
            grpc.ssl_channel_credentials(root_certificates=self.ca),
            options=options,
            interceptors=interceptors,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """What a caller adds to every call."""
        return ((TOKEN_HEADER, _SCHEME + self.token),) if self.token else ()

    def admits(self, method_name: str, metadata: dict[str, Any]) -> bool:
        """Whether a call to `method_name` with this metadata may go on: always without a
        token configured and for the health service, else only with the token."""
        if self.token is None or method_name.startswith(HEALTH_PREFIX):
            return True
        offered = metadata.get(TOKEN_HEADER)
        if not isinstance(offered, str) or not offered.startswith(_SCHEME):
            return False
        return hmac.compare_digest(offered[len(_SCHEME) :].encode(), self.token.encode())

    def describe(self) -> dict[str, bool]:
        """For the startup log line: what is on, never the material itself."""
        return {"token": self.token is not None, "tls": self.serves_tls or self.calls_tls}


def _read(name: str, path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InternalCallsMisconfigured(f"{name}: cannot read {path}: {error.strerror}") from None
