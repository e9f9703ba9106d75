"""What every storage backend offers, and the parts they share: keys, names, inspection."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO
from urllib.parse import quote

# The first bytes kept for recognising a file's type.
HEAD_BYTES = 64
CHUNK_BYTES = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SignedRequest:
    """A URL a client calls directly (never through the gateway), with what it must send."""

    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class Downloader:
    """Who a download URL is issued for: the URL names them, and the local file endpoint
    checks on every request that they may still download (admins always may)."""

    community_id: str
    user_id: str
    is_admin: bool = False


@dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str
    head: bytes


def safe_name(name: str, limit: int = 120) -> str:
    """A file or folder name that is safe in a path and a URL: `Cold Email (v2).pdf` →
    `Cold_Email_v2_.pdf`; never empty, never starting with a dot."""
    cleaned = _UNSAFE.sub("_", name).lstrip("._")[-limit:]
    return cleaned or "file"


def new_storage_key(community_id: str, file_name: str) -> str:
    """`<community>/<random>/<file name>`: unguessable, grouped by community, and still
    showing the name to whoever looks at the bucket."""
    return f"{safe_name(community_id, 64)}/{uuid.uuid4().hex}/{safe_name(file_name)}"


_KEY = re.compile(
    r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}/[0-9a-f]{32}/[A-Za-z0-9_][A-Za-z0-9._-]{0,119}$"
)


def is_storage_key(key: str) -> bool:
    """Whether `key` has the shape `new_storage_key` makes (so it cannot climb out of a
    directory or name another community's folder by accident)."""
    return bool(_KEY.fullmatch(key))


def content_disposition(file_name: str, content_type: str) -> str:
    """Videos open in the browser's player; everything else downloads under its own name
    (RFC 6266: an ASCII `filename` fallback of safe characters only, and the real name in
    `filename*`, percent-encoded, so quotes, `;` or CR/LF in a name cannot end the header)."""
    disposition = "inline" if is_inline(content_type) else "attachment"
    fallback = safe_name(file_name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def is_inline(content_type: str) -> bool:
    """Whether the browser plays the file in place (video) rather than saving it."""
    return content_type.lower().startswith("video/")


# Sent with every download: the browser never guesses another type than the checked one, and
# a file opened in a tab runs no script and reaches no origin (an HTML or SVG file uploaded as
# a PDF, say, cannot act as a page of ours).
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}


class Storage(ABC):
    """One place files live. Keys come from `new_storage_key`."""

    name: str

    @abstractmethod
    async def upload_url(
        self, key: str, content_type: str, max_size: int, ttl_seconds: int
    ) -> SignedRequest:
        """A URL the client PUTs the file to, bound to the content type (and, where the
        backend can enforce it while receiving, the size)."""

    @abstractmethod
    async def download_url(
        self, key: str, content_type: str, file_name: str, ttl_seconds: int, downloader: Downloader
    ) -> SignedRequest:
        """A URL serving the file to `downloader` only as long as it may download it (the
        local endpoint checks on every request; S3 cannot, so its URLs live briefly)."""

    @abstractmethod
    async def seal(self, key: str) -> None:
        """Puts the uploaded object where its upload URL cannot write any more, so the file
        checked next is the file served."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The stored object's size, or None when nothing is stored at `key`."""

    @abstractmethod
    def _open(self, key: str) -> BinaryIO:
        """A seekable, blocking reader of the object (used from a worker thread)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Removes the object; nothing stored at `key` is not an error."""

    async def inspect(self, key: str) -> StoredObject:
        """Reads the whole object once: its size, SHA-256 and first bytes."""
        return await asyncio.to_thread(self._inspect, key)

    def _inspect(self, key: str) -> StoredObject:
        digest = hashlib.sha256()
        head = b""
        size = 0
        with self._open(key) as reader:
            while chunk := reader.read(CHUNK_BYTES):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
        return StoredObject(size=size, sha256=digest.hexdigest(), head=head)

    async def zip_entries(self, key: str) -> list[str] | None:
        """The names inside a ZIP archive (DOCX and XLSX are ZIPs too), or None when the
        object is not a readable ZIP. Reads only the central directory at the end."""
        return await asyncio.to_thread(self._zip_entries, key)

    def _zip_entries(self, key: str) -> list[str] | None:
        with self._open(key) as reader:
            try:
                with zipfile.ZipFile(reader) as archive:
                    return archive.namelist()
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                return None
