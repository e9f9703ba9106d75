"""The resources process: ResourcesService over gRPC, the outbox relay that publishes
`resources.downloaded`, and — with the local storage backend — the file endpoint serving
signed upload and download URLs over HTTP."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5.xp.v1 import xp_pb2
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.logging import get_logger
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings
from wee5_kit.uow import unit_of_work
from wee5_resources.config import ResourcesSettings
from wee5_resources.files import file_server
from wee5_resources.membership import Memberships
from wee5_resources.models import outbox
from wee5_resources.service import ResourcesService
from wee5_resources.servicer import ResourcesServicer
from wee5_resources.storage import LocalStorage, build_storage

log = get_logger("wee5.resources")
PURGE_EVERY_SECONDS = 600.0


async def build(settings: KitSettings) -> GrpcServer:
    assert isinstance(settings, ResourcesSettings)
    storage = build_storage(settings)
    _check_signing_key(storage, settings)
    resources = await Resources.open("resources", settings)
    await resources.bus.ensure_stream("resources")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = ResourcesService(
        storage,
        events,
        url_ttl=settings.resources_url_ttl_seconds,
        max_upload=settings.resources_max_upload_bytes,
    )
    xp = resources.channel("xp", retrying=[xp_pb2.DESCRIPTOR.services_by_name["XpService"]])
    memberships = Memberships(xp)
    servicer = ResourcesServicer(service, resources.sessionmaker, memberships)
    server = resources.server()
    server.add_service(
        resources_pb2.DESCRIPTOR.services_by_name["ResourcesService"].full_name,
        lambda s: resources_pb2_grpc.add_ResourcesServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    server.add_background(lambda: _purge_abandoned_uploads(service, resources.sessionmaker))
    if isinstance(storage, LocalStorage):
        if storage.signer.is_development_key:
            log.warning(
                "WEE5_STORAGE_SIGNING_KEY is not set: signed file URLs use a development key "
                "published in the source code; set a random key of 32+ characters in production"
            )
        await _prepare_directory(storage)
        server.add_background(
            file_server(
                storage,
                settings.resources_http_host,
                settings.resources_http_port,
                settings.upload_origins,
                memberships.require_active,
            )
        )
        log.info(
            "local storage",
            directory=str(storage.root),
            file_endpoint=settings.resources_public_url,
            upload_origins=sorted(settings.upload_origins),
        )
    else:
        log.info("s3 storage", bucket=settings.s3_bucket, endpoint=settings.s3_endpoint_url)
    server.add_cleanup(lambda: xp.close(None))
    return server


async def _prepare_directory(storage: LocalStorage) -> None:
    await asyncio.to_thread(storage.root.mkdir, parents=True, exist_ok=True)


def _check_signing_key(storage: object, settings: ResourcesSettings) -> None:
    """The development key is published in the source: it is tolerated only while nothing
    beyond this machine can reach the file endpoint — it listens on a loopback address and
    its URLs point at one. Anything else (`0.0.0.0`, a LAN address, a public name) needs
    `WEE5_STORAGE_SIGNING_KEY`."""
    if not isinstance(storage, LocalStorage) or not storage.signer.is_development_key:
        return
    bind = settings.resources_http_host
    public = urlsplit(settings.resources_public_url).hostname or ""
    if not is_loopback(bind) or not is_loopback(public):
        raise RuntimeError(
            "WEE5_STORAGE_SIGNING_KEY is required when the file endpoint is reachable beyond "
            f"this machine (it listens on {bind!r}, URLs point at "
            f"{settings.resources_public_url}); without a key it must listen on a loopback "
            "address (WEE5_RESOURCES_HTTP_HOST=127.0.0.1)"
        )


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or the name `localhost`) is this machine's loopback. Parsed,
    not matched: `127.evil.example` and `0.0.0.0` are not loopback; `::ffff:127.0.0.1` is."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _purge_abandoned_uploads(
    service: ResourcesService, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Every few minutes, removes uploads that were never published (replicas may race:
    rows are claimed with SKIP LOCKED)."""
    while True:
        async with unit_of_work(sessionmaker) as uow:
            purged = await service.purge_abandoned_uploads(uow.session)
        if not purged:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
