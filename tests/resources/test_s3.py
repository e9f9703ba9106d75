"""The S3 backend against a real S3-compatible HTTP server (moto's server, run locally):
presigned PUT and GET over HTTP, verification reading the object (streamed for the checksum,
range requests for the ZIP directory of a DOCX), deletion, and the presigned URLs' SigV4 form.

moto accepts presigned requests without checking their signatures, so the signature itself is
checked here against the documented SigV4 query form, not by the server."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import grpc
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.conftest import free_port
from tests.resources.conftest import MembershipBook
from tests.resources.files import DOCX, PDF, docx_bytes, pdf_bytes, windows_exe_bytes
from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5_kit.grpc import channel
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build

if TYPE_CHECKING:
    from wee5.resources.v1.resources_pb2_grpc import ResourcesServiceAsyncStub

BUCKET = "wee5-test-resources"
REGION: Final = "eu-central-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIATESTRESOURCES",
        aws_secret_access_key="test-secret",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield endpoint
    server.stop()


@dataclass
class S3Library:
    stub: ResourcesServiceAsyncStub
    s3: object
    http: httpx.AsyncClient
    memberships: MembershipBook

    def exists(self, key: str) -> bool:
        """Whether anything is stored under the key: uploaded (staging) or published."""
        for stored in (f"uploads/{key}", key):
            try:
                self.s3.head_object(Bucket=BUCKET, Key=stored)  # type: ignore[attr-defined]
            except self.s3.exceptions.ClientError:  # type: ignore[attr-defined]
                continue
            return True
        return False


@pytest.fixture(scope="module")
async def s3_library(
    s3_endpoint: str, database_url: str, membership_server: tuple[MembershipBook, str]
) -> AsyncIterator[S3Library]:
    book, xp_addr = membership_server
    addr = f"127.0.0.1:{free_port()}"
    settings = ResourcesSettings(
        resources_addr=addr,
        xp_addr=xp_addr,
        storage_backend="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=BUCKET,
        s3_region=REGION,
        s3_access_key_id="AKIATESTRESOURCES",
        s3_secret_access_key="test-secret",
        s3_addressing_style="path",
    )
    server = await build(settings)
    await server.start()
    client = channel(addr)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="AKIATESTRESOURCES",
        aws_secret_access_key="test-secret",
        config=Config(s3={"addressing_style": "path"}),
    )
    async with httpx.AsyncClient(timeout=30) as http:
        yield S3Library(resources_pb2_grpc.ResourcesServiceStub(client), s3, http, book)
    await client.close(None)
    await server.stop()


async def _upload(
    lib: S3Library,
    community_id: str,
    content: bytes,
    content_type: str,
    max_size: int | None = None,
) -> resources_pb2.CreateUploadUrlResponse:
    grant: resources_pb2.CreateUploadUrlResponse = await lib.stub.CreateUploadUrl(
        resources_pb2.CreateUploadUrlRequest(
            community_id=community_id,
            file_name="file",
            content_type=content_type,
            max_size_bytes=max_size or len(content),
            created_by="account:test",
        )
    )
    put = await lib.http.request(
        grant.method, grant.url, content=content, headers=dict(grant.headers)
    )
    assert put.status_code == 200, put.text
    return grant


async def _create(
    lib: S3Library, community_id: str, key: str, **fields: object
) -> resources_pb2.CreateResourceResponse:
    reply: resources_pb2.CreateResourceResponse = await lib.stub.CreateResource(
        resources_pb2.CreateResourceRequest(
            community_id=community_id,
            storage_key=key,
            title="From S3",
            category="Operations",
            type=resources_pb2.RESOURCE_TYPE_TEMPLATE,
            created_by="account:test",
            **fields,  # type: ignore[arg-type]
        )
    )
    return reply


async def test_s3_upload_create_download_and_delete(
    s3_library: S3Library, community_id: str
) -> None:
    content = pdf_bytes(70_000)
    grant = await _upload(s3_library, community_id, content, PDF)
    created = await _create(s3_library, community_id, grant.storage_key)
    assert created.resource.size_bytes == len(content)
    assert created.resource.checksum_sha256 == hashlib.sha256(content).hexdigest()

    await s3_library.memberships.set(community_id, "user_s3", "active", True)
    link = await s3_library.stub.CreateDownloadUrl(
        resources_pb2.CreateDownloadUrlRequest(
            community_id=community_id, resource_id=created.resource.id, user_id="user_s3"
        )
    )
    assert link.counted
    whole = await s3_library.http.get(link.url)
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["content-type"] == PDF
    assert whole.headers["content-disposition"].startswith("attachment")
    part = await s3_library.http.get(link.url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == content[100:200]

    await s3_library.stub.DeleteResource(
        resources_pb2.DeleteResourceRequest(
            community_id=community_id, resource_id=created.resource.id
        )
    )
    assert not s3_library.exists(grant.storage_key)


async def test_s3_docx_is_recognised_by_its_zip_entries(
    s3_library: S3Library, community_id: str
) -> None:
    grant = await _upload(s3_library, community_id, docx_bytes(), DOCX)
    created = await _create(s3_library, community_id, grant.storage_key)
    assert created.resource.content_type == DOCX


async def test_s3_executable_renamed_pdf_is_refused_and_deleted(
    s3_library: S3Library, community_id: str
) -> None:
    grant = await _upload(s3_library, community_id, windows_exe_bytes(), PDF)
    assert s3_library.exists(grant.storage_key)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _create(s3_library, community_id, grant.storage_key)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "executable" in (raised.value.details() or "")
    assert not s3_library.exists(grant.storage_key)


async def test_s3_object_over_the_size_limit_is_refused_and_deleted(
    s3_library: S3Library, community_id: str
) -> None:
    # S3 cannot cap a presigned PUT's size: the limit is enforced when the resource is made.
    grant = await _upload(s3_library, community_id, pdf_bytes(5000), PDF, max_size=1000)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _create(s3_library, community_id, grant.storage_key)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over the 1000 allowed" in (raised.value.details() or "")
    assert not s3_library.exists(grant.storage_key)


async def test_s3_presigned_urls_have_the_sigv4_query_form(
    s3_library: S3Library, s3_endpoint: str, community_id: str
) -> None:
    grant = await _upload(s3_library, community_id, pdf_bytes(100), PDF)
    url = urlsplit(grant.url)
    assert f"{url.scheme}://{url.netloc}" == s3_endpoint
    assert url.path == f"/{BUCKET}/uploads/{grant.storage_key}"  # path-style, staging key
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "3600"
    access_key, day, region, service, terminator = query["X-Amz-Credential"].split("/")
    assert (access_key, region, service, terminator) == (
        "AKIATESTRESOURCES",
        REGION,
        "s3",
        "aws4_request",
    )
    assert query["X-Amz-Date"].startswith(day)
    # The content type is a signed header: a PUT with another type breaks the signature.
    assert query["X-Amz-SignedHeaders"].split(";") == ["content-type", "host"]
    assert len(query["X-Amz-Signature"]) == 64
    assert dict(grant.headers) == {"Content-Type": PDF}


def _sigv4_query_signature(method: str, url: str, headers: dict[str, str], secret: str) -> str:
    """SigV4 for a presigned (query-string) request, computed from AWS's documented steps:
    canonical request → string to sign → HMAC chain of date, region, service."""
    parts = urlsplit(url)
    pairs = sorted(
        (quote(name, safe="-_.~"), quote(values[0], safe="-_.~"))
        for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        if name != "X-Amz-Signature"
    )
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    signed = query["X-Amz-SignedHeaders"].split(";")
    all_headers = {"host": parts.netloc, **{k.lower(): v for k, v in headers.items()}}
    canonical = "\n".join(
        [
            method,
            parts.path,
            "&".join(f"{name}={value}" for name, value in pairs),
            "".join(f"{name}:{all_headers[name].strip()}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    _, day, region, service, terminator = query["X-Amz-Credential"].split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            f"{day}/{region}/{service}/{terminator}",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


async def test_s3_presigned_put_signature_matches_the_documented_sigv4_algorithm(
    s3_library: S3Library, community_id: str
) -> None:
    grant: resources_pb2.CreateUploadUrlResponse = await s3_library.stub.CreateUploadUrl(
        resources_pb2.CreateUploadUrlRequest(
            community_id=community_id,
            file_name="Plan (final).pdf",
            content_type=PDF,
            max_size_bytes=100,
            created_by="account:test",
        )
    )
    signature = parse_qs(urlsplit(grant.url).query)["X-Amz-Signature"][0]
    assert _sigv4_query_signature("PUT", grant.url, dict(grant.headers), "test-secret") == signature
    # The same URL sent with another content type is another request: its signature differs.
    other = _sigv4_query_signature("PUT", grant.url, {"Content-Type": "video/mp4"}, "test-secret")
    assert other != signature
    assert _sigv4_query_signature("GET", grant.url, dict(grant.headers), "test-secret") != signature


async def test_s3_a_published_file_cannot_be_swapped_through_its_upload_url(
    s3_library: S3Library, community_id: str
) -> None:
    content = pdf_bytes(3000)
    grant = await _upload(s3_library, community_id, content, PDF)
    created = await _create(s3_library, community_id, grant.storage_key)
    # The upload URL is valid for the rest of its hour, but writes only the staging key.
    replay = await s3_library.http.put(
        grant.url, content=windows_exe_bytes(), headers=dict(grant.headers)
    )
    assert replay.status_code == 200
    await s3_library.memberships.set(community_id, "user_swap", "active", True)
    link = await s3_library.stub.CreateDownloadUrl(
        resources_pb2.CreateDownloadUrlRequest(
            community_id=community_id, resource_id=created.resource.id, user_id="user_swap"
        )
    )
    assert (await s3_library.http.get(link.url)).content == content


async def test_s3_download_urls_live_briefly_and_are_never_sniffed(
    s3_library: S3Library, community_id: str
) -> None:
    """A presigned URL works for whoever holds it and S3 cannot ask whether its member may
    still download: it lives minutes, not the upload URL's hour."""
    grant = await _upload(s3_library, community_id, pdf_bytes(100), PDF)
    created = await _create(s3_library, community_id, grant.storage_key)
    link = await s3_library.stub.CreateDownloadUrl(
        resources_pb2.CreateDownloadUrlRequest(
            community_id=community_id,
            resource_id=created.resource.id,
            user_id="user_admin",
            is_admin=True,
        )
    )
    query = {name: values[0] for name, values in parse_qs(urlsplit(link.url).query).items()}
    assert query["X-Amz-Expires"] == "300"
    response = await s3_library.http.get(link.url)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "private, max-age=0"
