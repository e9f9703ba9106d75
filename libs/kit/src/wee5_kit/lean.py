"""Keeps out of a service process what its libraries would import and it never uses.

Imported first by each service's entry point (`python -m wee5_…`), never by a library or a
test: it changes what `import` does for the whole process.

nats-py imports aiohttp (with multidict, yarl, frozenlist, aiosignal) when it is installed,
only for NATS over WebSocket, which WEE5 never uses: about 7 MB of every process's resident
memory. With `sys.modules["aiohttp"] = None` its `import aiohttp` fails as if the package were
absent, and nats-py speaks plain TCP, as it does then. (It is installed for the Discord bot,
whose library needs it; the bot does not import this module.)

uvicorn imports watchfiles, when installed, for `--reload`, which a service never runs.

redis-py imports OpenTelemetry's metrics SDK, when installed, for metrics of its own that
only start if a process sets them up; WEE5's metrics are Prometheus', and its traces need the
tracing SDK alone: about 1.4 MB of every process (35 modules).

`keep_out` does the same for what only some processes never use (`wee5_gateway.lean`).
"""

import sys


def keep_out(*packages: str) -> None:
    """Makes `import` of each package fail in this process as if it were not installed."""
    for package in packages:
        sys.modules.setdefault(package, None)  # type: ignore[arg-type]


keep_out("aiohttp", "watchfiles", "opentelemetry.sdk.metrics")
