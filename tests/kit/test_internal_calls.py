"""Calls between services with the internal token and TLS on (wee5_kit.internal_calls): a real
xp server configured as the chart configures it, the real gateway calling it, and strangers
calling it without the token, with the wrong one, or without TLS. The health service stays
open to probes: without the token, and in plaintext on its own port."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, serve
from tests.support.whop import new_id
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel, check_health
from wee5_kit.internal_calls import InternalCalls, InternalCallsMisconfigured
from wee5_kit.settings import KitSettings
from wee5_xp.config import XpSettings
from wee5_xp.server import build

TOKEN = "internal-" + "t" * 40
SERVER_NAME = "wee5-xp.internal"  # the certificate names this, not 127.0.0.1


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A CA and a server certificate it signed for `SERVER_NAME` (as cert-manager would)."""
    folder = tmp_path_factory.mktemp("grpc-tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("wee5 test CA"))
        .issuer_name(_name("wee5 test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_NAME))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = Tls(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


def secured(tls: Tls, **more: object) -> dict[str, object]:
    """The settings the chart gives every process with the token and TLS on."""
    return {
        "internal_token": TOKEN,
        "grpc_tls_cert_file": str(tls.cert),
        "grpc_tls_key_file": str(tls.key),
        "grpc_tls_ca_file": str(tls.ca),
        "grpc_tls_server_name": SERVER_NAME,
        **more,
    }


@dataclass(frozen=True)
class Xp:
    addr: str
    health_port: int


@pytest.fixture(scope="module")
async def xp(database_url: str, redis: Redis, bus: EventBus, tls: Tls) -> AsyncIterator[Xp]:
    addr, health_port = f"127.0.0.1:{free_port()}", free_port()
    server = await build(
        XpSettings(
            xp_addr=addr,
            xp_cooldown_seconds=0,
            **secured(tls, grpc_health_port=health_port),  # type: ignore[arg-type]
        )
    )
    await server.start()
    yield Xp(addr, health_port)
    await server.stop()


def leaderboard(chan: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:  # type: ignore[type-arg]
    return xp_pb2_grpc.XpServiceStub(chan).GetLeaderboard


REQUEST = xp_pb2.GetLeaderboardRequest(community_id="exp_internal", limit=5)


async def test_the_gateway_with_the_token_and_the_ca_reads_through_tls(xp: Xp, tls: Tls) -> None:
    # A caller needs the token, the CA and the name (no certificate of its own).
    settings = gateway_settings(
        xp.addr,
        internal_token=TOKEN,
        grpc_tls_ca_file=str(tls.ca),
        grpc_tls_server_name=SERVER_NAME,
        readiness_timeout_seconds=10,  # a loaded machine's TLS handshake is no outage
    )
    community = new_id("exp")
    async with serve(settings, headers=bearer(settings, platform_admin=True)) as gateway:
        board = await gateway.get(f"/api/v1/communities/{community}/leaderboard")
        ready = await gateway.get("/readyz")
    assert board.status_code == 200, board.text
    assert board.json()["entries"] == []
    assert ready.json()["checks"]["xp"] == "ok"


async def test_a_caller_without_the_token_or_with_another_is_unauthenticated(
    xp: Xp, tls: Tls
) -> None:
    for token in (None, "internal-" + "x" * 40):
        calls = InternalCalls.from_settings(
            KitSettings(
                internal_token=token,
                grpc_tls_ca_file=str(tls.ca),
                grpc_tls_server_name=SERVER_NAME,
            )
        )
        async with channel(xp.addr, calls=calls) as chan:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await leaderboard(chan)(REQUEST)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.value.details() == "internal token missing or wrong"
            # Probes send no token: the health service answers them.
            assert await check_health(chan)


async def test_plaintext_or_an_unchecked_name_never_reaches_the_service(xp: Xp, tls: Tls) -> None:
    plaintext = InternalCalls(token=TOKEN)
    wrong_name = InternalCalls(token=TOKEN, ca=tls.ca.read_bytes())  # dials 127.0.0.1 as is
    for calls in (plaintext, wrong_name):
        async with channel(xp.addr, calls=calls) as chan:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await leaderboard(chan)(REQUEST, timeout=3)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_health_port_answers_probes_in_plaintext_and_serves_nothing_else(
    xp: Xp,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{xp.health_port}") as chan:
        reply = await health_pb2_grpc.HealthStub(chan).Check(
            health_pb2.HealthCheckRequest(service="liveness"), timeout=3
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await leaderboard(chan)(
                REQUEST, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=3
            )
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_with_the_token_alone_calls_stay_plaintext_and_still_need_it(
    database_url: str, redis: Redis, bus: EventBus
) -> None:
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr, internal_token=TOKEN))
    await server.start()
    try:
        async with channel(addr, calls=InternalCalls(token=TOKEN)) as chan:
            reply = await leaderboard(chan)(REQUEST)
        async with channel(addr) as chan:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await leaderboard(chan)(REQUEST)
    finally:
        await server.stop()
    assert list(reply.entries) == []
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_tls_settings_that_cannot_work_stop_startup_with_the_setting_named(
    tls: Tls, tmp_path: Path
) -> None:
    with pytest.raises(InternalCallsMisconfigured, match="go together"):
        InternalCalls.from_settings(KitSettings(grpc_tls_cert_file=str(tls.cert)))
    missing = tmp_path / "absent.crt"
    with pytest.raises(InternalCallsMisconfigured, match="WEE5_GRPC_TLS_CA_FILE: cannot read"):
        InternalCalls.from_settings(KitSettings(grpc_tls_ca_file=str(missing)))
