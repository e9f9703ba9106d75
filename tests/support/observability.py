"""Local stand-ins for Sentry's ingest and an OpenTelemetry collector, speaking their real wire
formats: Sentry envelopes (`POST /api/<project>/envelope/`, gzip) as the official SDK sends
them to the host of its DSN, and OTLP/HTTP protobuf (`POST /v1/traces`) as the OTLP exporter
sends it to `OTEL_EXPORTER_OTLP_ENDPOINT`. Each keeps what it received for the test to read.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

T = TypeVar("T")


class _Receiver:
    """A threaded HTTP server on 127.0.0.1 passing each POST body (decoded) to `receive`."""

    def __init__(self, receive: Callable[[str, bytes], bytes]) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli  # type: ignore[import-not-found]

                    body = brotli.decompress(body)
                with receiver.lock:
                    answer = receive(self.path, body)
                self.send_response(200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SentryIngest:
    """Sentry's envelope endpoint: `dsn` points the SDK here; `events` are what arrived."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self._receiver = _Receiver(self._receive)

    @property
    def dsn(self) -> str:
        return f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{self._receiver.port}/42"

    def _receive(self, path: str, body: bytes) -> bytes:
        assert path.startswith("/api/42/"), path
        self.raw.append(body)
        if path.rstrip("/").endswith("envelope"):
            for item_type, payload in parse_envelope(body):
                if item_type == "event":
                    self.events.append(json.loads(payload))
        elif path.rstrip("/").endswith("store"):  # older SDKs: one event, no envelope
            self.events.append(json.loads(body))
        return b"{}"

    def wait_for(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The first event `matches` accepts, waiting for it to arrive."""
        return _wait(lambda: next((e for e in list(self.events) if matches(e)), None), timeout)

    def start(self) -> None:
        self._receiver.start()

    def stop(self) -> None:
        self._receiver.stop()


def parse_envelope(body: bytes) -> Iterator[tuple[str, bytes]]:
    """(item type, payload) of each item of a Sentry envelope: a header line, then per item a
    header line (with `length`, or without: up to the next newline) and its payload."""
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        yield header.get("type", ""), payload


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int


class OtlpCollector:
    """An OTLP/HTTP traces endpoint: `endpoint` is OTEL_EXPORTER_OTLP_ENDPOINT's value."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._receiver = _Receiver(self._receive)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._receiver.port}"

    def _receive(self, path: str, body: bytes) -> bytes:
        assert path == "/v1/traces", path
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=attributes.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse().SerializeToString()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in list(self.spans) if span.trace_id == trace_id]

    def wait_for(
        self, matches: Callable[[ReceivedSpan], bool], timeout: float = 30
    ) -> ReceivedSpan:
        return _wait(lambda: next((s for s in list(self.spans) if matches(s)), None), timeout)

    def closed_trace(self, trace_id: str, timeout: float = 30) -> list[ReceivedSpan]:
        """The trace's spans once every span but the root has its parent among them (a
        parent ends, and is exported, after its children)."""

        def closed() -> list[ReceivedSpan] | None:
            spans = self.trace(trace_id)
            ids = {s.span_id for s in spans}
            orphaned = any(s.parent_span_id and s.parent_span_id not in ids for s in spans)
            return None if orphaned else spans

        return _wait(closed, timeout)

    def start(self) -> None:
        self._receiver.start()

    def stop(self) -> None:
        self._receiver.stop()


def _wait(found: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := found()) is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"nothing matching arrived within {timeout} s")


@contextmanager
def sentry_ingest() -> Iterator[SentryIngest]:
    ingest = SentryIngest()
    ingest.start()
    try:
        yield ingest
    finally:
        ingest.stop()


@contextmanager
def otlp_collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
