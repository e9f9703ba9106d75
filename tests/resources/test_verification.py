"""A resource is created only from a file that is what it was declared to be: checked by its
bytes (magic numbers; DOCX/XLSX by the entries inside the ZIP), never an executable, within
the size signed for and matching the client's checksum. A refused file is deleted."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.resources.conftest import Community, Library
from tests.resources.files import (
    DOCX,
    MP4,
    PDF,
    XLSX,
    ZIP,
    docx_bytes,
    elf_bytes,
    mp4_bytes,
    pdf_bytes,
    windows_exe_bytes,
    xlsx_bytes,
    zip_bytes,
)
from tests.support.gateway import new_account


def _stored(community: Community, grant: dict[str, Any]) -> Path:
    return community.lib.storage_dir / str(grant["storage_key"])


async def _create(community: Community, grant: dict[str, Any], **fields: Any) -> Any:
    body = {
        "storage_key": grant["storage_key"],
        "title": "A resource",
        "category": "Operations",
        "type": "template",
        **fields,
    }
    return await community.lib.gateway.post(
        f"{community.base}/resources", json=body, headers=community.admin_headers
    )


@pytest.mark.parametrize(
    ("content", "content_type", "file_name"),
    [
        (pdf_bytes(), PDF, "sop.pdf"),
        (docx_bytes(), DOCX, "sop.docx"),
        (xlsx_bytes(), XLSX, "model.xlsx"),
        (mp4_bytes(50_000), MP4, "walkthrough.mp4"),
        (zip_bytes(), ZIP, "templates.zip"),
    ],
    ids=["pdf", "docx", "xlsx", "mp4", "zip"],
)
async def test_each_accepted_type_is_recognised(
    community: Community, content: bytes, content_type: str, file_name: str
) -> None:
    grant = await community.upload(content, content_type=content_type, file_name=file_name)
    response = await _create(community, grant)
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == content_type
    assert _stored(community, grant).read_bytes() == content


async def test_pdf_declared_as_mp4_is_refused_and_deleted(community: Community) -> None:
    grant = await community.upload(pdf_bytes(), content_type=MP4, file_name="video.mp4")
    assert _stored(community, grant).exists()
    response = await _create(community, grant, type="video")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "the file is a PDF, not an MP4 video as declared" in response.json()["detail"]
    assert not _stored(community, grant).exists()


@pytest.mark.parametrize("program", [windows_exe_bytes(), elf_bytes()], ids=["pe", "elf"])
async def test_executable_renamed_pdf_is_refused_and_deleted(
    community: Community, program: bytes
) -> None:
    grant = await community.upload(program, content_type=PDF, file_name="invoice.pdf")
    response = await _create(community, grant)
    assert response.status_code == 400
    assert "executable" in response.json()["detail"]
    assert not _stored(community, grant).exists()
    listed = await community.lib.gateway.get(
        f"{community.base}/resources", headers=community.admin_headers
    )
    assert listed.json()["resources"] == []


async def test_xlsx_declared_as_docx_is_refused(community: Community) -> None:
    grant = await community.upload(xlsx_bytes(), content_type=DOCX, file_name="a.docx")
    response = await _create(community, grant)
    assert response.status_code == 400
    assert "Excel workbook" in response.json()["detail"]
    assert not _stored(community, grant).exists()


async def test_plain_zip_declared_as_docx_is_refused(community: Community) -> None:
    grant = await community.upload(zip_bytes(), content_type=DOCX, file_name="a.docx")
    response = await _create(community, grant)
    assert response.status_code == 400
    assert "ZIP archive" in response.json()["detail"]


async def test_checksum_mismatch_is_refused_and_deleted(community: Community) -> None:
    content = pdf_bytes()
    grant = await community.upload(content)
    response = await _create(community, grant, checksum_sha256=hashlib.sha256(b"other").hexdigest())
    assert response.status_code == 400
    assert "SHA-256" in response.json()["detail"]
    assert not _stored(community, grant).exists()


async def test_creating_before_the_upload_is_a_conflict(community: Community) -> None:
    response = await community.lib.gateway.post(
        f"{community.base}/resources/uploads",
        json={"file_name": "a.pdf", "content_type": PDF, "size_bytes": 100},
        headers=community.admin_headers,
    )
    created = await _create(community, response.json())
    assert created.status_code == 409
    assert "upload the file first" in created.json()["detail"]


async def test_a_key_from_another_community_is_not_found(
    community: Community, library: Library
) -> None:
    grant = await community.upload(pdf_bytes())
    other_id = f"exp_{uuid.uuid4().hex[:12]}"
    admin = await new_account(library.sessions, other_id, "admin")
    response = await library.gateway.post(
        f"/api/v1/communities/{other_id}/resources",
        json={
            "storage_key": grant["storage_key"],
            "title": "Stolen",
            "category": "Operations",
            "type": "template",
        },
        headers=library.as_account(admin),
    )
    assert response.status_code == 404
    assert _stored(community, grant).exists()


async def test_creating_twice_from_one_upload_returns_the_same_resource(
    community: Community,
) -> None:
    grant = await community.upload(pdf_bytes())
    first = await _create(community, grant)
    again = await _create(community, grant)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    listed = await community.lib.gateway.get(
        f"{community.base}/resources", headers=community.admin_headers
    )
    assert listed.json()["total_count"] == 1


async def test_category_must_be_one_of_the_library(community: Community) -> None:
    grant = await community.upload(pdf_bytes())
    response = await _create(community, grant, category="Astrology")
    assert response.status_code == 400
    assert "Cold email" in response.json()["detail"]
    assert _stored(community, grant).exists()  # metadata errors keep the upload for a retry


async def test_upload_of_an_unaccepted_type_or_size_is_invalid(community: Community) -> None:
    for body in (
        {"file_name": "a.exe", "content_type": "application/x-msdownload", "size_bytes": 10},
        {"file_name": "a.pdf", "content_type": PDF, "size_bytes": 0},
        {"file_name": "a.pdf", "content_type": PDF, "size_bytes": 10**13},
    ):
        response = await community.lib.gateway.post(
            f"{community.base}/resources/uploads", json=body, headers=community.admin_headers
        )
        assert response.status_code == 400, body
        assert response.headers["content-type"].startswith("application/problem+json")
