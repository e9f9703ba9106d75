"""Files in a local directory, reached through HMAC-signed URLs of this process's own file
endpoint (`wee5_resources.files`).

A signature covers the method, the key, the expiry and — for uploads — the content type and
the largest size accepted, or — for downloads — the content type and file name served. It is
checked in constant time; a URL changed in any of these, used after its expiry or with
another method is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from wee5_resources.storage.base import Downloader, SignedRequest, Storage, is_storage_key

# Used when WEE5_STORAGE_SIGNING_KEY is unset; anyone can read it here, so the process
# warns at startup. Fine on a developer's machine, never in production.
DEV_SIGNING_KEY = b"wee5-development-signing-key-do-not-use-in-production"
# Starts every signed message: URLs signed by another layout never verify.
SIGNATURE_VERSION = b"wee5-url-v2;"


# The role a download URL was issued under: an admin's URL is not re-checked against a membership.
ADMIN, MEMBER = "admin", "member"


class UrlRefused(Exception):
    """A request to the file endpoint that its URL does not allow, with the HTTP status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class UploadGrant:
    key: str
    content_type: str
    max_size: int


@dataclass(frozen=True)
class DownloadGrant:
    key: str
    content_type: str
    file_name: str
    downloader: Downloader


def signed_message(*fields: str) -> bytes:
    """The fields as one unambiguous message: each one prefixed with its length in bytes, so
    no field (a file name may hold CR/LF or any separator) can shift its text into the next."""
    parts = [SIGNATURE_VERSION]
    for field in fields:
        data = field.encode()
        parts.append(b"%d:%s" % (len(data), data))
    return b"".join(parts)


class UrlSigner:
    """HMAC-SHA256 over everything a URL grants; verified with `hmac.compare_digest`."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @property
    def is_development_key(self) -> bool:
        return hmac.compare_digest(self._key, DEV_SIGNING_KEY)

    def sign(self, method: str, key: str, expires: int, *fields: str) -> str:
        mac = hmac.new(
            self._key, signed_message(method, key, str(expires), *fields), hashlib.sha256
        )
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def verify(self, signature: str, method: str, key: str, expires: int, *fields: str) -> bool:
        return hmac.compare_digest(
            self.sign(method, key, expires, *fields).encode(), signature.encode()
        )


def _one(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    if not values or len(values) != 1:
        raise UrlRefused(403, f"the URL is not signed: `{name}` is missing")
    return values[0]


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root: Path, signer: UrlSigner, public_url: str) -> None:
        self.root = root.resolve()
        self.signer = signer
        self.public_url = public_url.rstrip("/")

    def path_of(self, key: str) -> Path:
        if not is_storage_key(key):
            raise UrlRefused(404, "no such file")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise UrlRefused(404, "no such file")
        return path

    def _url(self, key: str, params: dict[str, str]) -> str:
        return f"{self.public_url}/files/{quote(key)}?{urlencode(params)}"

    async def upload_url(
        self, key: str, content_type: str, max_size: int, ttl_seconds: int
    ) -> SignedRequest:
        expires = int(time.time()) + ttl_seconds
        signature = self.signer.sign("PUT", key, expires, content_type, str(max_size))
        params = {"expires": str(expires), "ct": content_type, "max": str(max_size)}
        return SignedRequest(
            url=self._url(key, {**params, "sig": signature}),
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    async def download_url(
        self, key: str, content_type: str, file_name: str, ttl_seconds: int, downloader: Downloader
    ) -> SignedRequest:
        expires = int(time.time()) + ttl_seconds
        role = ADMIN if downloader.is_admin else MEMBER
        fields = (content_type, file_name, downloader.community_id, downloader.user_id, role)
        signature = self.signer.sign("GET", key, expires, *fields)
        params = {
            "expires": str(expires),
            "ct": content_type,
            "name": file_name,
            "community": downloader.community_id,
            "member": downloader.user_id,
            "role": role,
        }
        return SignedRequest(
            url=self._url(key, {**params, "sig": signature}),
            method="GET",
            headers={},
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def _expiry(self, params: dict[str, list[str]]) -> int:
        try:
            expires = int(_one(params, "expires"))
        except ValueError:
            raise UrlRefused(403, "the URL's expiry is not a number") from None
        return expires

    def verify_upload(self, key: str, params: dict[str, list[str]], now: float) -> UploadGrant:
        expires = self._expiry(params)
        content_type, max_size = _one(params, "ct"), _one(params, "max")
        if not self.signer.verify(_one(params, "sig"), "PUT", key, expires, content_type, max_size):
            raise UrlRefused(
                403, "the URL's signature does not match (changed, or not an upload URL)"
            )
        if now > expires:
            raise UrlRefused(403, "the upload URL has expired")
        return UploadGrant(key, content_type, int(max_size))

    def verify_download(self, key: str, params: dict[str, list[str]], now: float) -> DownloadGrant:
        expires = self._expiry(params)
        # Who it is for: absent (an upload URL, say) fails the signature like any change.
        holder = [params.get(name, [""])[0] for name in ("community", "member", "role")]
        fields = [_one(params, "ct"), _one(params, "name"), *holder]
        if not self.signer.verify(_one(params, "sig"), "GET", key, expires, *fields):
            raise UrlRefused(
                403, "the URL's signature does not match (changed, or not a download URL)"
            )
        if now > expires:
            raise UrlRefused(403, "the download URL has expired")
        content_type, file_name, community_id, user_id, role = fields
        return DownloadGrant(
            key, content_type, file_name, Downloader(community_id, user_id, role == ADMIN)
        )

    async def seal(self, key: str) -> None:
        """Nothing to move: the file endpoint writes a key at most once (409 after)."""

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path_of(key).stat)).st_size
        except (FileNotFoundError, UrlRefused):
            return None

    def _open(self, key: str) -> BinaryIO:
        return self.path_of(key).open("rb")

    async def delete(self, key: str) -> None:
        try:
            path = self.path_of(key)
        except UrlRefused:
            return
        await asyncio.to_thread(_remove, path)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    # Drop the now empty `<community>/<random>` folder; the community folder stays.
    try:
        os.rmdir(path.parent)
    except OSError:
        pass
