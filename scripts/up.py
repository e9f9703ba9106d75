"""`make up`: creates the database, then runs the gateway and the five services under one
process manager (honcho) with prefixed logs, prints the URLs once everything is ready, and
stops everything on Ctrl-C or SIGTERM (each process drains gracefully).

Each process migrates its own schema when it starts. Settings come from WEE5_* variables.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from honcho.manager import Manager
from honcho.printer import Printer

from wee5_gateway.config import GatewaySettings
from wee5_gateway.demo import DEMO_COMMUNITY, DEMO_EMAIL, DEMO_PASSWORD
from wee5_kit.db import ensure_database
from wee5_kit.settings import KitSettings

SERVICES = ("xp", "rewards", "benchmarks", "resources", "billing", "gateway")
READY_TIMEOUT_SECONDS = 120


def announce_when_ready(base_url: str, settings: KitSettings, manager: Manager) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as reply:
                if reply.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    else:
        print(
            f"up: {base_url}/readyz did not answer 200 within {READY_TIMEOUT_SECONDS}s", flush=True
        )
        return
    grpc = ", ".join(f"{name} {settings.service_addr(name)}" for name in SERVICES[:-1])
    print(
        "\n"
        f"  WEE5 is up (ready in {time.monotonic() - started:.1f}s)\n"
        f"  Pages       {base_url}/discover   sign in outside Whop: {base_url}/app/sign-in\n"
        f"{_demo(base_url)}"
        f"  API         {base_url}/api/v1/...\n"
        f"  Webhooks    {base_url}/webhooks/whop   {base_url}/webhooks/stripe\n"
        f"  OpenAPI     {base_url}/schema\n"
        f"  Health      {base_url}/healthz   {base_url}/readyz\n"
        f"  gRPC        {grpc}\n"
        f"  Files       {os.environ.get('WEE5_RESOURCES_PUBLIC_URL', 'http://127.0.0.1:8010')}"
        " (signed URLs of local storage)\n"
        f"  Rewards     {_provider('Whop API', 'WEE5_WHOP_API_KEY', 'free days and codes wait')}\n"
        f"              {_provider('Discord roles', 'WEE5_DISCORD_BOT_TOKEN', 'roles wait')}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


started = time.monotonic()


def _demo(base_url: str) -> str:
    """The demo community's pages and account, when the gateway seeds it (WEE5_DEMO)."""
    if not GatewaySettings().demo:
        return ""
    return (
        f"  Demo        members   {base_url}/app/experiences/{DEMO_COMMUNITY}\n"
        f"              dashboard {base_url}/app/dashboard/{DEMO_COMMUNITY}\n"
        f"              sign in as {DEMO_EMAIL} with password {DEMO_PASSWORD}"
        " (WEE5_DEMO=0 for no demo)\n"
    )


def _provider(name: str, variable: str, meanwhile: str) -> str:
    if os.environ.get(variable):
        return f"{name} on"
    return f"{name} off: set {variable} ({meanwhile} until then)"


def main() -> int:
    settings = KitSettings()
    created = asyncio.run(ensure_database(settings.database_url))
    if created:
        print(f"up: created database {settings.database_url.rsplit('/', 1)[-1]}", flush=True)
    port = int(os.environ.get("WEE5_GATEWAY_PORT", "8000"))
    # Two malloc arenas: glibc's default (8 per core) lets each of a process's threads (gRPC,
    # asyncio's executor) keep freed memory of its own, tens of MB per process.
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "PYTHONUNBUFFERED": "1"}
    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    for name in SERVICES:
        manager.add_process(name, f"{sys.executable} -m wee5_{name}", env=env)
    watcher = threading.Thread(
        target=announce_when_ready,
        args=(f"http://127.0.0.1:{port}", settings, manager),
        daemon=True,
    )
    watcher.start()
    manager.loop()
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
