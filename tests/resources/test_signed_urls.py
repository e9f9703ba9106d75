"""The file endpoint accepts exactly what a URL was signed for: not after its expiry, not
with another method, key, content type or size, not with a changed signature — and an upload
lands at most once, so a checked file cannot be swapped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.resources.conftest import SIGNING_KEY, Community
from tests.resources.files import mp4_bytes, pdf_bytes
from wee5_resources.storage import Downloader, LocalStorage, UrlSigner


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _signer_storage(community: Community) -> LocalStorage:
    settings = community.lib.resources_settings
    return LocalStorage(
        Path(settings.storage_dir), UrlSigner(SIGNING_KEY.encode()), settings.resources_public_url
    )


async def _grant(community: Community, size: int = 4096) -> dict[str, str]:
    response = await community.lib.gateway.post(
        f"{community.base}/resources/uploads",
        json={"file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": size},
        headers=community.admin_headers,
    )
    assert response.status_code == 201, response.text
    grant: dict[str, str] = response.json()
    return grant


def _admin(community: Community) -> Downloader:
    return Downloader(community.id, "user_admin", is_admin=True)


async def _download_url(community: Community, headers: dict[str, str] | None = None) -> str:
    resource = await community.publish()
    link = await community.lib.gateway.post(
        f"{community.base}/resources/{resource['id']}/download",
        headers=headers or community.admin_headers,
    )
    url: str = link.json()["url"]
    return url


async def test_expired_upload_url_is_refused(community: Community) -> None:
    storage = _signer_storage(community)
    key = (await _grant(community))["storage_key"]
    expired = await storage.upload_url(key, "application/pdf", 4096, ttl_seconds=-1)
    response = await community.lib.files.put(
        expired.url, content=pdf_bytes(100), headers=expired.headers
    )
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]
    assert not (storage.root / key).exists()


async def test_expired_download_url_is_refused(community: Community) -> None:
    await community.publish()
    storage = _signer_storage(community)
    stored = next((storage.root / community.id).rglob("*.pdf"))
    key = stored.relative_to(storage.root).as_posix()
    expired = await storage.download_url(key, "application/pdf", "a.pdf", -1, _admin(community))
    response = await community.lib.files.get(expired.url)
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]
    fresh = await storage.download_url(key, "application/pdf", "a.pdf", 60, _admin(community))
    assert (await community.lib.files.get(fresh.url)).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        {"expires": str(int(time.time()) + 999_999)},  # a longer life
        {"max": str(10**9)},  # a larger file
        {"ct": "video/mp4"},  # another type
        {"sig": "A" * 43},  # a forged signature
    ],
    ids=["expires", "max_size", "content_type", "signature"],
)
async def test_tampered_upload_url_is_refused(community: Community, tamper: dict[str, str]) -> None:
    grant = await _grant(community)
    url = _with(grant["url"], **tamper)
    content_type = tamper.get("ct", "application/pdf")
    response = await community.lib.files.put(
        url, content=pdf_bytes(100), headers={"Content-Type": content_type}
    )
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


async def test_upload_url_for_another_key_is_refused(community: Community) -> None:
    grant = await _grant(community)
    other_key = (await _grant(community))["storage_key"]
    parts = urlsplit(grant["url"])
    moved = urlunsplit(parts._replace(path=f"/files/{other_key}"))
    response = await community.lib.files.put(
        moved, content=pdf_bytes(100), headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 403


async def test_tampered_download_url_is_refused(community: Community) -> None:
    url = await _download_url(community)
    for tampered in (
        _with(url, name="other.pdf"),
        _with(url, ct="text/html"),
        _with(url, sig="x"),
        _with(url, role="member"),
    ):
        response = await community.lib.files.get(tampered)
        assert response.status_code == 403, tampered


async def test_download_url_cannot_upload(community: Community) -> None:
    url = await _download_url(community)
    for attempt in (url, _with(url, max="100000")):
        response = await community.lib.files.put(
            attempt, content=pdf_bytes(100), headers={"Content-Type": "application/pdf"}
        )
        assert response.status_code == 403
    assert "not an upload URL" in response.json()["detail"]


async def test_upload_url_cannot_download(community: Community) -> None:
    grant = await _grant(community)
    await community.lib.files.put(
        grant["url"], content=pdf_bytes(100), headers={"Content-Type": "application/pdf"}
    )
    for attempt in (grant["url"], _with(grant["url"], name="a.pdf")):
        response = await community.lib.files.get(attempt)
        assert response.status_code == 403
    assert "not a download URL" in response.json()["detail"]


async def test_other_methods_are_not_allowed(community: Community) -> None:
    grant = await _grant(community)
    response = await community.lib.files.delete(grant["url"])
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT"


async def test_upload_with_another_content_type_is_refused(community: Community) -> None:
    grant = await _grant(community)
    response = await community.lib.files.put(
        grant["url"], content=pdf_bytes(100), headers={"Content-Type": "video/mp4"}
    )
    assert response.status_code == 415


async def test_upload_over_the_signed_size_is_refused_while_receiving(
    community: Community,
) -> None:
    grant = await _grant(community, size=1000)
    storage = _signer_storage(community)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):  # 2,560 bytes without a Content-Length: counted as it arrives
            yield b"%PDF" + bytes(252)

    response = await community.lib.files.put(
        grant["url"], content=chunks(), headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 413
    assert not (storage.root / grant["storage_key"]).exists()
    assert not list((storage.root / grant["storage_key"]).parent.glob(".*.part"))

    declared = await community.lib.files.put(
        grant["url"], content=pdf_bytes(1001), headers={"Content-Type": "application/pdf"}
    )
    assert declared.status_code == 413


async def test_an_upload_url_writes_its_key_once(community: Community) -> None:
    grant = await _grant(community)
    first = await community.lib.files.put(
        grant["url"], content=pdf_bytes(200), headers={"Content-Type": "application/pdf"}
    )
    again = await community.lib.files.put(
        grant["url"], content=pdf_bytes(300), headers={"Content-Type": "application/pdf"}
    )
    assert first.status_code == 200
    assert again.status_code == 409
    stored = _signer_storage(community).root / grant["storage_key"]
    assert stored.stat().st_size == 200


async def test_keys_outside_the_storage_shape_are_not_found(community: Community) -> None:
    storage = _signer_storage(community)
    signed = await storage.download_url(
        "../../etc/passwd", "text/plain", "p", 60, _admin(community)
    )
    response = await community.lib.files.get(signed.url)
    assert response.status_code == 404


async def test_downloads_are_never_sniffed_nor_run_as_a_page(community: Community) -> None:
    """A file opened in a tab cannot act as a page of ours: the browser keeps the checked
    type (nosniff), runs it in a sandbox without scripts or origin, and saves it."""
    response = await community.lib.files.get(await _download_url(community))
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_a_video_plays_inline_still_sandboxed(community: Community) -> None:
    resource = await community.publish(mp4_bytes(), content_type="video/mp4", file_name="v.mp4")
    link = await community.lib.gateway.post(
        f"{community.base}/resources/{resource['id']}/download", headers=community.admin_headers
    )
    response = await community.lib.files.get(link.json()["url"], headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"


async def test_a_hostile_file_name_stays_inside_content_disposition(community: Community) -> None:
    await community.publish()
    storage = _signer_storage(community)
    stored = next((storage.root / community.id).rglob("*.pdf"))
    key = stored.relative_to(storage.root).as_posix()
    name = 'évil"; x=1\r\nSet-Cookie: a=b.pdf'
    signed = await storage.download_url(key, "application/pdf", name, 60, _admin(community))
    response = await community.lib.files.get(signed.url)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''%C3%A9vil%22%3B%20x%3D1%0D%0ASet-Cookie%3A%20a%3Db.pdf" in disposition


async def test_a_member_link_serves_only_while_that_member_may_download(
    community: Community,
) -> None:
    url = await _download_url(community, community.member_headers)
    assert parse_qs(urlsplit(url).query)["member"] == [community.member_user_id]
    assert (await community.lib.files.get(url)).status_code == 200
    await community.lib.memberships.set(community.id, community.member_user_id, "expired", False)
    refused = await community.lib.files.get(url)
    assert refused.status_code == 403
    assert community.member_user_id in refused.json()["detail"]
    assert "expired" in refused.json()["detail"]


async def test_a_member_link_cannot_be_moved_to_another_member_or_made_an_admins(
    community: Community,
) -> None:
    url = await _download_url(community, community.member_headers)
    for moved in (_with(url, member="user_someone_else"), _with(url, role="admin")):
        response = await community.lib.files.get(moved)
        assert response.status_code == 403, moved
        assert "signature" in response.json()["detail"]
