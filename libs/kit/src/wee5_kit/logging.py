"""JSON structured logging: one object per line, carrying request, community and event ids.

Our own lines (`get_logger`) go straight from structlog to stdout: a level below the configured
one costs a no-op call, and a line is rendered once, without the standard library's record,
handler and formatter around it (about half the cost per line; the access log and the rpc log
write one line per request). Lines of libraries that log through the standard library
(uvicorn, SQLAlchemy, gRPC) are rendered by the same processors into the same JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars
from structlog.typing import FilteringBoundLogger

__all__ = ["bind_contextvars", "bound_contextvars", "clear_contextvars", "configure", "get_logger"]

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _NamedWriter(structlog.WriteLogger):
    """structlog's line writer, knowing the name it was made for (`add_logger_name` reads it)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriterFactory:
    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self.file, str(args[0]) if args else "")


def configure(service: str, level: str = "INFO") -> None:
    """Routes structlog and the standard library through one JSON renderer on stdout."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # Access logs are ours; uvicorn's own would log every request a second time.
    logging.getLogger("uvicorn.access").disabled = True
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=_NamedWriterFactory(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        cache_logger_on_first_use=True,
    )
    bind_contextvars(service=service)


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger whose lines say `"logger": name`; usable before `configure` (it is made on
    its first use)."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
