"""The local backend's file endpoint: a small ASGI app, served by uvicorn inside the resources
process, that accepts uploads (PUT) and serves downloads (GET/HEAD) on signed URLs only.

Uploads stream to a temporary file while counting bytes, stop at the signed size limit (413),
must carry the signed Content-Type (415), and land with a hard link so a key is written at
most once (409): a resource's file cannot be swapped after it was checked. Downloads stream
in chunks and honour a single `Range` (206 with Content-Range, 416 when unsatisfiable), as
video players need.

Browsers upload from the admin pages, which live on the gateway's origin: for those origins
only (`upload_origins`), a CORS preflight of a PUT with a Content-Type is answered and the
upload's answer may be read. Downloads need no CORS: the page navigates to the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, BinaryIO
from urllib.parse import parse_qs

import uvicorn

from wee5_kit.logging import get_logger
from wee5_resources.errors import MembershipRequired, MembershipUnavailable
from wee5_resources.storage.base import DOWNLOAD_HEADERS, content_disposition
from wee5_resources.storage.local import DownloadGrant, LocalStorage, UrlRefused

log = get_logger("wee5.resources.files")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/files/"
CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSATISFIABLE = object()
# What a browser may ask to send with an upload: the signed Content-Type, nothing else.
_CORS_REQUEST_HEADERS = frozenset({"content-type"})
CORS_MAX_AGE = b"600"
_DOWNLOAD_HEADERS = [
    (name.lower().encode(), value.encode()) for name, value in DOWNLOAD_HEADERS.items()
]
# Asks whether a member (community id, user id) may download; raises MembershipRequired or
# MembershipUnavailable when not. Unset: no check (a URL's signature alone decides).
MayDownload = Callable[[str, str], Awaitable[None]]


class FileEndpoint:
    def __init__(
        self,
        storage: LocalStorage,
        upload_origins: frozenset[str] = frozenset(),
        may_download: MayDownload | None = None,
    ) -> None:
        self.storage = storage
        self.upload_origins = upload_origins
        self.may_download = may_download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/healthz":
            await _respond(send, 200, b"ok", [(b"content-type", b"text/plain")])
            return
        try:
            if not path.startswith(PREFIX):
                raise UrlRefused(404, "no such file")
            key = path[len(PREFIX) :]
            params = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            headers = scope_headers(scope)
            if method == "OPTIONS":
                await self._preflight(headers, send)
            elif method == "PUT":
                await self._upload(key, params, headers, receive, self._cors(headers, send))
            elif method in ("GET", "HEAD"):
                await self._download(key, params, headers, send, head_only=method == "HEAD")
            else:
                raise UrlRefused(405, f"{method} is not allowed here")
        except UrlRefused as refused:
            extra = [(b"allow", b"GET, HEAD, PUT")] if refused.status == 405 else []
            if method == "PUT":
                send = self._cors(scope_headers(scope), send)
            await _problem(send, refused.status, refused.detail, extra)

    def _allowed_origin(self, headers: dict[str, str]) -> str | None:
        origin = headers.get("origin")
        return origin if origin is not None and origin in self.upload_origins else None

    async def _preflight(self, headers: dict[str, str], send: Send) -> None:
        """A browser asking whether a page of `upload_origins` may PUT a file here."""
        origin = self._allowed_origin(headers)
        if origin is None:
            raise UrlRefused(403, "uploads from this origin are not allowed")
        if headers.get("access-control-request-method") != "PUT":
            raise UrlRefused(403, "only uploads (PUT) may be sent from a browser")
        asked = headers.get("access-control-request-headers", "")
        wanted = {name.strip().lower() for name in asked.split(",") if name.strip()}
        if not wanted <= _CORS_REQUEST_HEADERS:
            raise UrlRefused(403, "an upload may send only a Content-Type header")
        await _respond(
            send,
            204,
            b"",
            [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", b"PUT"),
                (b"access-control-allow-headers", b"content-type"),
                (b"access-control-max-age", CORS_MAX_AGE),
                (b"vary", b"origin"),
            ],
        )

    def _cors(self, headers: dict[str, str], send: Send) -> Send:
        """`send`, adding to the answer that a page of an upload origin may read it."""
        origin = self._allowed_origin(headers)
        if origin is None:
            return send

        async def send_readable(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"origin"),
                ]
            await send(message)

        return send_readable

    async def _upload(
        self,
        key: str,
        params: dict[str, list[str]],
        headers: dict[str, str],
        receive: Receive,
        send: Send,
    ) -> None:
        grant = self.storage.verify_upload(key, params, time.time())
        sent_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if sent_type != grant.content_type.lower():
            raise UrlRefused(415, f"this URL accepts only Content-Type {grant.content_type}")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > grant.max_size:
            raise UrlRefused(413, f"the file is larger than the {grant.max_size} bytes allowed")
        target = self.storage.path_of(key)
        if await asyncio.to_thread(target.exists):
            raise UrlRefused(409, "a file was already uploaded with this URL")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        received = 0
        try:
            with await asyncio.to_thread(partial.open, "wb") as out:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        log.info("upload abandoned by the client", key=key, received=received)
                        return
                    chunk: bytes = message.get("body", b"")
                    received += len(chunk)
                    if received > grant.max_size:
                        raise UrlRefused(
                            413, f"the file is larger than the {grant.max_size} bytes allowed"
                        )
                    if chunk:
                        digest.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                    if not message.get("more_body", False):
                        break
                await asyncio.to_thread(_flush, out)
            try:
                # A link fails when the key exists: two racing uploads, one wins.
                await asyncio.to_thread(os.link, partial, target)
            except FileExistsError:
                raise UrlRefused(409, "a file was already uploaded with this URL") from None
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        log.info("file uploaded", key=key, size=received)
        etag = f'"{digest.hexdigest()}"'.encode()
        await _respond(send, 200, b"", [(b"etag", etag), (b"content-length", b"0")])

    async def _download(
        self,
        key: str,
        params: dict[str, list[str]],
        headers: dict[str, str],
        send: Send,
        *,
        head_only: bool,
    ) -> None:
        grant = self.storage.verify_download(key, params, time.time())
        await self._check_downloader(grant)
        path = self.storage.path_of(key)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            raise UrlRefused(404, "no such file") from None
        start, end, status = 0, size - 1, 200
        wanted = _parse_range(headers.get("range"), size)
        if wanted is UNSATISFIABLE:
            await _problem(
                send,
                416,
                f"the file has {size} bytes",
                [(b"content-range", f"bytes */{size}".encode())],
            )
            return
        if isinstance(wanted, tuple):
            start, end = wanted
            status = 206
        response_headers = [
            (b"content-type", grant.content_type.encode()),
            (b"content-length", str(end - start + 1 if size else 0).encode()),
            (b"accept-ranges", b"bytes"),
            (
                b"content-disposition",
                content_disposition(grant.file_name, grant.content_type).encode(),
            ),
            (b"cache-control", b"private, max-age=0"),
            *_DOWNLOAD_HEADERS,
        ]
        if status == 206:
            response_headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        if head_only or size == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        with await asyncio.to_thread(path.open, "rb") as source:
            await asyncio.to_thread(source.seek, start)
            for length in _chunks(end - start + 1):
                chunk = await asyncio.to_thread(source.read, length)
                if not chunk:  # the file shrank under us; end the body here
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _check_downloader(self, grant: DownloadGrant) -> None:
        """A member's URL serves only while that member may download (asked on every
        request, so a membership that ends stops its links at once); an admin's always."""
        downloader = grant.downloader
        if downloader.is_admin or self.may_download is None:
            return
        try:
            await self.may_download(downloader.community_id, downloader.user_id)
        except MembershipRequired as refused:
            raise UrlRefused(
                403, f"this link was issued to {downloader.user_id}: {refused}"
            ) from None
        except MembershipUnavailable as unavailable:
            raise UrlRefused(503, str(unavailable)) from None


def scope_headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


def _chunks(remaining: int) -> Iterator[int]:
    while remaining > 0:
        length = min(CHUNK, remaining)
        yield length
        remaining -= length


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _parse_range(header: str | None, size: int) -> tuple[int, int] | object | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped to the file. Anything else
    (absent, several ranges, malformed) is None: the whole file, as RFC 9110 allows."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        return UNSATISFIABLE
    if end < start:
        return None
    return start, end


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
    ).encode()
    await _respond(
        send,
        status,
        body,
        [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    )


_TITLES = {
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    503: "Service Unavailable",
}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the gRPC server owns SIGTERM and stops us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def file_server(
    storage: LocalStorage,
    host: str,
    port: int,
    upload_origins: frozenset[str] = frozenset(),
    may_download: MayDownload | None = None,
) -> Callable[[], Awaitable[None]]:
    """A background loop serving the file endpoint until cancelled, then closing cleanly."""
    config = uvicorn.Config(
        FileEndpoint(storage, upload_origins, may_download),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            server.should_exit = True
            await task
            raise
        if not server.started:
            raise RuntimeError(f"the file endpoint could not listen on {host}:{port}")

    return serve
