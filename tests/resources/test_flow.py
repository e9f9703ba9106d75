"""The whole path over real HTTP: an admin gets an upload URL from the gateway, PUTs the file
straight to the resources process's file endpoint, publishes it, a member finds it in the
list and downloads it from a signed URL; the file never passes through the gateway."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from tests.resources.conftest import Community
from tests.resources.files import MP4, mp4_bytes, pdf_bytes


async def test_upload_create_list_download_over_http(community: Community) -> None:
    lib = community.lib
    content = pdf_bytes(50_000)
    grant = await community.upload(content, file_name="Cold Email Playbook.pdf")
    assert grant["method"] == "PUT"
    assert grant["headers"] == {"Content-Type": "application/pdf"}
    assert (
        urlsplit(grant["url"]).netloc
        == urlsplit(lib.resources_settings.resources_public_url).netloc
    )
    assert grant["storage_key"].endswith("/Cold_Email_Playbook.pdf")

    created = await lib.gateway.post(
        f"{community.base}/resources",
        json={
            "storage_key": grant["storage_key"],
            "title": "Cold email playbook",
            "description": "Sequences that book meetings",
            "category": "Cold email",
            "type": "playbook",
            "tags": ["Outbound", "email"],
            "checksum_sha256": hashlib.sha256(content).hexdigest(),
        },
        headers=community.admin_headers,
    )
    assert created.status_code == 201, created.text
    resource = created.json()
    assert resource["size_bytes"] == len(content)
    assert resource["content_type"] == "application/pdf"
    assert resource["checksum_sha256"] == hashlib.sha256(content).hexdigest()
    assert resource["file_name"] == "Cold Email Playbook.pdf"
    assert resource["tags"] == ["outbound", "email"]
    assert resource["download_count"] == 0

    listed = await lib.gateway.get(f"{community.base}/resources", headers=community.member_headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["resources"]] == [resource["id"]]

    link = await lib.gateway.post(
        f"{community.base}/resources/{resource['id']}/download", headers=community.member_headers
    )
    assert link.status_code == 200, link.text
    assert link.json()["counted"] is True
    assert link.json()["first_by_member"] is True
    downloaded = await lib.files.get(link.json()["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == content
    assert downloaded.headers["content-type"] == "application/pdf"
    assert "Cold%20Email%20Playbook.pdf" in downloaded.headers["content-disposition"]

    fetched = await lib.gateway.get(
        f"{community.base}/resources/{resource['id']}", headers=community.member_headers
    )
    assert fetched.json()["download_count"] == 1


async def test_video_download_serves_byte_ranges(community: Community) -> None:
    lib = community.lib
    content = mp4_bytes(300_000)
    resource = await community.publish(
        content, content_type=MP4, file_name="onboarding.mp4", type="video", title="Onboarding"
    )
    link = await lib.gateway.post(
        f"{community.base}/resources/{resource['id']}/download", headers=community.member_headers
    )
    url = link.json()["url"]

    middle = await lib.files.get(url, headers={"Range": "bytes=1000-1999"})
    assert middle.status_code == 206
    assert middle.headers["content-range"] == f"bytes 1000-1999/{len(content)}"
    assert middle.content == content[1000:2000]

    tail = await lib.files.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206
    assert tail.content == content[-500:]

    open_ended = await lib.files.get(url, headers={"Range": "bytes=299000-"})
    assert open_ended.content == content[299000:]

    beyond = await lib.files.get(url, headers={"Range": f"bytes={len(content)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(content)}"

    head = await lib.files.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(content))
    assert head.content == b""

    whole = await lib.files.get(url)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"].startswith("inline")
    assert whole.content == content
