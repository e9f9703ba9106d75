"""A serving process keeps out what it never uses: Alembic and Mako (the schema is migrated in
a forked child), aiohttp (nats-py's WebSocket transport), watchfiles (uvicorn's reload) and,
with no DSN, the Sentry SDK. Each is megabytes of every process's resident memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

UNUSED = ("alembic", "mako", "aiohttp", "watchfiles", "sentry_sdk")
SERVICES = ("gateway", "xp", "rewards", "billing", "benchmarks", "resources")

# Runs the service's entry point up to its command line (--help exits there, after every
# import the serving process makes) and prints which of the unused packages are loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["probe", "--help"]
try:
    runpy.run_module("wee5_{service}", run_name="__main__")
except SystemExit:
    pass
print(json.dumps([name for name in {unused!r} if sys.modules.get(name) is not None]))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_process_imports_nothing_it_never_uses(service: str) -> None:
    # The gateway draws no progress bars nor console tracebacks either.
    unused = (*UNUSED, "rich", "pygments") if service == "gateway" else UNUSED
    probe = PROBE.format(service=service, unused=unused)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"WEE5_SENTRY_DSN": "", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == []
