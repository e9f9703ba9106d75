"""JSON structured logging: one object per line, carrying request, community and event ids.

Our own lines (`get_logger`) go straight from structlog to stdout: a level below the configured
one costs a no-op call, and a line is rendered once, without the standard library's record,
handler and formatter around it (about half the cost per line; the access log and the rpc log
write one line per request). Lines of libraries that log through the standard library
(uvicorn, SQLAlchemy, gRPC) are rendered by the same processors into the same JSON.

Inside a running event loop, the lines of one loop iteration leave in one write at its end:
a write per line woke the reader of the pipe (`make up`, a container runtime) once a line, and
stopped the gateway whenever that reader was slower, about a tenth of its time at 3,000
requests a second. Outside a loop (other threads, startup, shutdown) a line is written at once,
after anything still waiting, and what waits at exit is written then.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars
from structlog.typing import FilteringBoundLogger, Processor

__all__ = ["bind_contextvars", "bound_contextvars", "clear_contextvars", "configure", "get_logger"]

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class Lines:
    """A text stream that holds what is written during an event loop iteration and writes it
    to `file` at the iteration's end (at once when no loop runs in the writing thread)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._pending: list[str] = []
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def write(self, text: str) -> int:
        with self._lock:
            self._pending.append(text)
            first = len(self._pending) == 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
        else:
            if first:
                loop.call_soon(self.flush)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            self.file.write(text)
            self.file.flush()


class _NamedWriter:
    """One structlog logger: its lines go to `Lines`; knows the name it was made for
    (`add_logger_name` reads it)."""

    def __init__(self, lines: Lines, name: str) -> None:
        self.lines = lines
        self.name = name

    def msg(self, message: str) -> None:
        self.lines.write(message + "\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _NamedWriterFactory:
    def __init__(self, lines: Lines) -> None:
        self.lines = lines

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self.lines, str(args[0]) if args else "")


def configure(service: str, level: str = "INFO", extra: Sequence[Processor] = ()) -> None:
    """Routes structlog and the standard library through one JSON renderer on stdout.
    `extra` processors see every line before it is rendered (the trace id, error reporting:
    wee5_kit.tracing, wee5_kit.sentry)."""
    shared = [*_SHARED, *extra]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    global _lines
    lines = _lines = Lines(sys.stdout)
    handler = logging.StreamHandler(lines)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # Access logs are ours; uvicorn's own would log every request a second time.
    logging.getLogger("uvicorn.access").disabled = True
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=_NamedWriterFactory(lines),
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        cache_logger_on_first_use=True,
    )
    bind_contextvars(service=service)


_lines: Lines | None = None


def flush() -> None:
    """Writes the lines held for the end of the loop iteration now (before `os._exit`, which
    runs no `atexit` hook)."""
    if _lines is not None:
        _lines.flush()


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger whose lines say `"logger": name`; usable before `configure` (it is made on
    its first use)."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
