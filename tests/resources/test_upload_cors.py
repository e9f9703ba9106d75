"""Browsers upload from the admin pages, which live on the gateway's origin: the file
endpoint lets exactly those origins send a file with its Content-Type (CORS for PUT), and
no other origin, method or header."""

from __future__ import annotations

from tests.resources.conftest import Community
from tests.resources.files import pdf_bytes

# The library fixture's resources settings leave WEE5_PUBLIC_URL at its default.
PAGES = "http://127.0.0.1:8000"


async def _grant(community: Community) -> dict[str, str]:
    response = await community.lib.gateway.post(
        f"{community.base}/resources/uploads",
        json={"file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 4096},
        headers=community.admin_headers,
    )
    assert response.status_code == 201, response.text
    grant: dict[str, str] = response.json()
    return grant


def _preflight(origin: str, method: str = "PUT", headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_the_pages_origin_may_upload_with_its_content_type(community: Community) -> None:
    assert community.lib.resources_settings.upload_origins == {PAGES}
    grant = await _grant(community)
    preflight = await community.lib.files.options(grant["url"], headers=_preflight(PAGES))
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGES
    assert preflight.headers["access-control-allow-methods"] == "PUT"
    assert preflight.headers["access-control-allow-headers"] == "content-type"

    upload = await community.lib.files.put(
        grant["url"],
        content=pdf_bytes(1000),
        headers={**grant["headers"], "Origin": PAGES},  # type: ignore[dict-item]
    )
    assert upload.status_code == 200
    assert upload.headers["access-control-allow-origin"] == PAGES
    # A refusal is readable too, so the page can say why.
    again = await community.lib.files.put(
        grant["url"],
        content=pdf_bytes(1000),
        headers={**grant["headers"], "Origin": PAGES},  # type: ignore[dict-item]
    )
    assert again.status_code == 409
    assert again.headers["access-control-allow-origin"] == PAGES


async def test_other_origins_methods_and_headers_get_no_grant(community: Community) -> None:
    grant = await _grant(community)
    files = community.lib.files
    other_site = await files.options(grant["url"], headers=_preflight("https://evil.example"))
    download = await files.options(grant["url"], headers=_preflight(PAGES, method="GET"))
    extra_header = await files.options(
        grant["url"], headers=_preflight(PAGES, headers="content-type, authorization")
    )
    for answer in (other_site, download, extra_header):
        assert answer.status_code == 403
        assert "access-control-allow-origin" not in answer.headers
    upload = await files.put(
        grant["url"],
        content=pdf_bytes(1000),
        headers={**grant["headers"], "Origin": "https://evil.example"},  # type: ignore[dict-item]
    )
    assert "access-control-allow-origin" not in upload.headers
