"""`make up`: creates the database, then runs the gateway and the five services under one
process manager (honcho) with prefixed logs, prints the URLs once everything is ready, and
stops everything on Ctrl-C or SIGTERM (each process drains gracefully).

Each process migrates its own schema when it starts. Settings come from WEE5_* variables;
without WEE5_JWT_SECRET, the key this machine made once (in `.wee5/`, git-ignored) signs the
access tokens, so a restart keeps everyone signed in.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer
from pydantic import ValidationError

from wee5_billing.config import BillingSettings
from wee5_gateway.config import GatewaySettings
from wee5_gateway.demo import DEMO_COMMUNITY, DEMO_EMAIL, DEMO_PASSWORD
from wee5_kit.db import ensure_database
from wee5_kit.settings import KitSettings

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET_FILE = ROOT / ".wee5" / "jwt-secret"
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
        f"{_dev_plan()}"
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


def _dev_plan() -> str:
    plan = BillingSettings().dev_plan
    return f"  Plans       every community has at least {plan} (WEE5_DEV_PLAN)\n" if plan else ""


def _provider(name: str, variable: str, meanwhile: str) -> str:
    if os.environ.get(variable):
        return f"{name} on"
    return f"{name} off: set {variable} ({meanwhile} until then)"


def local_jwt_secret(path: Path = JWT_SECRET_FILE) -> str:
    """This machine's key for signing access tokens, made once and kept."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it (owner-only), then linked into place: a `make up` starting at the
        # same moment reads either no file or a whole one, and the first key made wins.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(file.name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(file.name)
    return path.read_text().strip()


@contextmanager
def terminal_of_our_own() -> Iterator[None]:
    """Run from a terminal, makes this process group the terminal's foreground while the
    platform runs, so Ctrl-C reaches this launcher and its processes, not `make` above it
    (which would report the interrupt as a failure of its own); the terminal is handed back
    at the end. Outside a terminal (tests, CI) nothing changes."""
    tty = sys.stdin.fileno() if sys.stdin and sys.stdin.isatty() else None
    if tty is None or os.getpgrp() != os.tcgetpgrp(tty):
        yield
        return
    previous = os.getpgrp()
    try:
        os.setpgid(0, 0)
    except OSError:  # already leading a session or a group of its own
        yield
        return
    _foreground(tty, os.getpgrp())
    try:
        yield
    finally:
        _foreground(tty, previous)


def _foreground(tty: int, group: int) -> None:
    # A group not in the foreground gets SIGTTOU for taking the terminal unless it ignores it.
    before = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, group)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, before)


def main() -> int:
    settings = KitSettings()
    try:
        BillingSettings()
    except ValidationError as error:
        # Said once, before anything starts, rather than by billing among the others' logs.
        print(f"up: refusing to start: {'; '.join(e['msg'] for e in error.errors())}", flush=True)
        return 2
    created = asyncio.run(ensure_database(settings.database_url))
    if created:
        print(f"up: created database {settings.database_url.rsplit('/', 1)[-1]}", flush=True)
    port = int(os.environ.get("WEE5_GATEWAY_PORT", "8000"))
    # Two malloc arenas: glibc's default (8 per core) lets each of a process's threads (gRPC,
    # asyncio's executor) keep freed memory of its own, tens of MB per process.
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "PYTHONUNBUFFERED": "1"}
    if not env.get("WEE5_JWT_SECRET"):
        env["WEE5_JWT_SECRET"] = local_jwt_secret()
    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    for name in SERVICES:
        manager.add_process(name, f"{sys.executable} -m wee5_{name}", env=env)
    watcher = threading.Thread(
        target=announce_when_ready,
        args=(f"http://127.0.0.1:{port}", settings, manager),
        daemon=True,
    )
    watcher.start()
    with terminal_of_our_own():
        manager.loop()
    # honcho answers 130 when Ctrl-C stopped everything: a stop asked for, not a failure.
    if manager.returncode == 128 + signal.SIGINT:
        return 0
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
