"""Any S3-compatible object store (AWS S3, MinIO, R2, Supabase Storage's S3 endpoint) through
boto3: presigned PUT and GET URLs (SigV4), so bytes go straight between client and bucket.

A presigned PUT binds the key, the method, the expiry and the Content-Type (a signed header);
S3 cannot cap a PUT's size, so the size limit is enforced when the resource is created (the
object is measured and deleted when too large). Uploads land under `uploads/<key>`; creating
the resource first moves the object to `<key>` (a server-side copy), which no URL can write,
so a leaked upload URL cannot swap a checked file during the rest of its hour. boto3 is blocking: network calls run in a
worker thread; presigning is local computation.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from wee5_resources.storage.base import (
    CHUNK_BYTES,
    HEAD_BYTES,
    Downloader,
    SignedRequest,
    Storage,
    StoredObject,
    content_disposition,
    is_inline,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from wee5_resources.config import ResourcesSettings

_MISSING = {"404", "NoSuchKey", "NotFound"}
STAGING = "uploads/"
# How long a presigned download URL (other than a video's) stays valid.
DOWNLOAD_TTL_SECONDS = 300


class S3Storage(Storage):
    name = "s3"

    def __init__(
        self, client: S3Client, bucket: str, download_ttl: int = DOWNLOAD_TTL_SECONDS
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.download_ttl = download_ttl

    @classmethod
    def from_settings(cls, settings: ResourcesSettings) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id.get_secret_value()
            if settings.s3_access_key_id
            else None,
            aws_secret_access_key=settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": settings.s3_addressing_style},
                retries={"mode": "standard", "max_attempts": 4},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        return cls(client, settings.s3_bucket, settings.resources_s3_download_ttl_seconds)

    def _presign(self, operation: str, params: dict[str, Any], ttl_seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=ttl_seconds
        )
        return url

    async def upload_url(
        self, key: str, content_type: str, max_size: int, ttl_seconds: int
    ) -> SignedRequest:
        url = self._presign(
            "put_object", {"Key": STAGING + key, "ContentType": content_type}, ttl_seconds
        )
        return SignedRequest(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        )

    async def download_url(
        self, key: str, content_type: str, file_name: str, ttl_seconds: int, downloader: Downloader
    ) -> SignedRequest:
        # A presigned URL cannot ask anyone whether its member may still download, and works
        # for whoever holds it: it lives briefly. A video keeps the full time, since its
        # player asks for ranges while it plays.
        if not is_inline(content_type):
            ttl_seconds = min(ttl_seconds, self.download_ttl)
        params = {
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition(file_name, content_type),
            "ResponseCacheControl": "private, max-age=0",
        }
        return SignedRequest(
            url=self._presign("get_object", params, ttl_seconds),
            method="GET",
            headers={},
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        )

    async def seal(self, key: str) -> None:
        await asyncio.to_thread(self._seal, key)

    def _seal(self, key: str) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": STAGING + key},
            )
        except ClientError as error:
            if _error_code(error) in _MISSING:
                return  # nothing uploaded (size() says so), or sealed by an earlier attempt
            raise
        self.client.delete_object(Bucket=self.bucket, Key=STAGING + key)

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING:
                return None
            raise
        return int(head["ContentLength"])

    def _inspect(self, key: str) -> StoredObject:
        # One streaming GET rather than a range request per chunk.
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        head = b""
        size = 0
        try:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
        finally:
            body.close()
        return StoredObject(size=size, sha256=digest.hexdigest(), head=head)

    def _open(self, key: str) -> BinaryIO:
        head = self.client.head_object(Bucket=self.bucket, Key=key)
        raw = _RangeReader(self.client, self.bucket, key, int(head["ContentLength"]))
        return io.BufferedReader(raw, buffer_size=256 * 1024)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key}, {"Key": STAGING + key}], "Quiet": True},
        )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class _RangeReader(io.RawIOBase):
    """A seekable view of an object that fetches what is read with HTTP range requests, so
    a ZIP's central directory (at the end) is read without downloading the archive."""

    def __init__(self, client: S3Client, bucket: str, key: str, size: int) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.length = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.position >= self.length or not len(view):
            return 0
        end = min(self.length, self.position + len(view)) - 1
        body = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={self.position}-{end}"
        )["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        view[: len(data)] = data
        self.position += len(data)
        return len(data)
