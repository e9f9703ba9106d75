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


# Builds the gateway's app as `python -m wee5_gateway` does (its lean module first), then
# prints what building it imported and which plugins the app has.
APP_PROBE = """
import json, sys
import wee5_gateway.lean
from wee5_gateway.app import create_app
app = create_app()
print(json.dumps({
    "loaded": [name for name in json.loads(sys.argv[1]) if sys.modules.get(name) is not None],
    "plugins": sorted(type(plugin).__name__ for plugin in app.plugins),
    "documented_paths": len(app.openapi_schema.paths),
}))
"""


def test_the_gateway_app_is_built_without_litestars_pydantic_and_opentelemetry_plugins() -> None:
    # Litestar adds both to every app when their packages are installed (pydantic for the
    # settings, OpenTelemetry for tracing): megabytes for models and a middleware the
    # gateway's app does not have.
    unused = ("pydantic.v1", "litestar.plugins.pydantic", "litestar.plugins.opentelemetry")
    done = subprocess.run(
        [sys.executable, "-c", APP_PROBE, json.dumps(unused)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"WEE5_JWT_SECRET": "lean-probe-" + "x" * 40, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert built["loaded"] == []
    assert not [name for name in built["plugins"] if "Pydantic" in name or "OpenTelemetry" in name]
    assert built["documented_paths"] > 50  # the API's description is still whole
