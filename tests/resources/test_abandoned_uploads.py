"""Uploads that were never published are removed, rows and files, a day after their URL
expired; published ones and fresh ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.resources.conftest import SIGNING_KEY, Community
from tests.resources.files import pdf_bytes
from wee5_kit.events import Outbox
from wee5_resources.models import Upload, outbox
from wee5_resources.service import ResourcesService
from wee5_resources.storage import LocalStorage, UrlSigner


async def _expire(community: Community, key: str, ago: timedelta) -> None:
    async with community.lib.sessions.begin() as session:
        await session.execute(
            update(Upload)
            .where(Upload.storage_key == key)
            .values(expires_at=datetime.now(UTC) - ago)
        )


async def test_abandoned_uploads_are_deleted_with_their_files(community: Community) -> None:
    lib = community.lib
    abandoned = await community.upload(pdf_bytes(), file_name="abandoned.pdf")
    recent = await community.upload(pdf_bytes(), file_name="recent.pdf")
    published_grant = await community.upload(pdf_bytes(), file_name="published.pdf")
    created = await lib.gateway.post(
        f"{community.base}/resources",
        json={
            "storage_key": published_grant["storage_key"],
            "title": "Kept",
            "category": "Operations",
            "type": "sop",
        },
        headers=community.admin_headers,
    )
    assert created.status_code == 201
    await _expire(community, abandoned["storage_key"], timedelta(days=2))
    await _expire(community, recent["storage_key"], timedelta(hours=1))
    await _expire(community, published_grant["storage_key"], timedelta(days=2))

    settings = lib.resources_settings
    service = ResourcesService(
        LocalStorage(
            Path(settings.storage_dir),
            UrlSigner(SIGNING_KEY.encode()),
            settings.resources_public_url,
        ),
        Outbox(outbox),
        url_ttl=3600,
        max_upload=10**9,
    )
    async with lib.sessions.begin() as session:
        await service.purge_abandoned_uploads(session)

    async with lib.sessions() as session:
        left = set(
            await session.scalars(
                select(Upload.storage_key).where(Upload.community_id == community.id)
            )
        )
    assert left == {recent["storage_key"], published_grant["storage_key"]}
    assert not (lib.storage_dir / abandoned["storage_key"]).exists()
    assert (lib.storage_dir / recent["storage_key"]).exists()
    assert (lib.storage_dir / published_grant["storage_key"]).exists()
    download = await lib.gateway.post(
        f"{community.base}/resources/{created.json()['id']}/download",
        headers=community.member_headers,
    )
    assert (await lib.files.get(download.json()["url"])).status_code == 200
