"""`make up`: creates the database, then runs the gateway and the five services as children of
this process, each line they print prefixed with the time and their name, and prints the URLs
once everything is ready.

- No shell between: the pid a line names is the service's own.
- A process that exits on its own is started again, after 1 s, doubling up to 30 s while it
  keeps failing. One that fails three times in a row within 10 s of starting (a setting or a
  database it cannot get past) stops the stack with its output above, exit status 1.
- Ctrl-C or SIGTERM stops the gateway first, letting it finish the requests in flight while
  the services still answer them, then the services; everything drains gracefully and this
  exits 0. The children run in a process group of their own, so a terminal's Ctrl-C reaches
  them only through this order.

Each process migrates its own schema when it starts. Settings come from WEE5_* variables;
without WEE5_JWT_SECRET, the key this machine made once (in `.wee5/`, git-ignored) signs the
access tokens, so a restart keeps everyone signed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from wee5_billing.config import BillingSettings
from wee5_gateway.config import GatewaySettings
from wee5_gateway.demo import DEMO_COMMUNITY, DEMO_EMAIL, DEMO_PASSWORD
from wee5_kit.db import ensure_database
from wee5_kit.settings import KitSettings

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET_FILE = ROOT / ".wee5" / "jwt-secret"
SERVICES = ("xp", "rewards", "benchmarks", "resources", "billing", "gateway")
# Started only when configured: the Discord bot (services/discord) needs a bot token.
DISCORD_BOT = "discord"
READY_TIMEOUT_SECONDS = 120
FIRST_RESTART_SECONDS = 1.0
LONGEST_RESTART_SECONDS = 30.0
# A process that exits this soon after starting, this many times in a row, cannot start.
EARLY_EXIT_SECONDS = 10.0
EARLY_EXITS_TO_GIVE_UP = 3
# Longer than any process's own shutdown grace (WEE5_SHUTDOWN_GRACE_SECONDS, 10 s by default).
STOP_TIMEOUT_SECONDS = 30.0
MAX_LINE_BYTES = 1024 * 1024
PIPE_BYTES = 1024 * 1024


async def announce_when_ready(base_url: str, settings: KitSettings) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not await asyncio.to_thread(_ready, base_url):
        if time.monotonic() > deadline:
            print(
                f"up: {base_url}/readyz did not answer 200 within {READY_TIMEOUT_SECONDS}s",
                flush=True,
            )
            return
        await asyncio.sleep(0.5)
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
        f"  Discord     {_provider('bot', 'WEE5_DISCORD_BOT_TOKEN', 'no XP from Discord')}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


started = time.monotonic()


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


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


@contextlib.contextmanager
def terminal_of_our_own() -> Iterator[None]:
    """Run from a terminal, makes this process group the terminal's foreground while the
    platform runs, so Ctrl-C reaches this launcher, not `make` above it (which would report
    the interrupt as a failure of its own); the terminal is handed back at the end. Outside a
    terminal (tests, CI) nothing changes."""
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


def processes(env: dict[str, str]) -> tuple[str, ...]:
    """What `make up` runs: the six always, the Discord bot when it has a token."""
    return (*SERVICES, DISCORD_BOT) if env.get("WEE5_DISCORD_BOT_TOKEN") else SERVICES


def metrics_env(name: str) -> dict[str, str]:
    """`WEE5_METRICS_BASE_PORT=9100`: the gateway serves /metrics on 9100, xp, rewards,
    benchmarks, resources and billing on 9101…9105, the Discord bot on 9106; unset, no
    process serves metrics."""
    base = os.environ.get("WEE5_METRICS_BASE_PORT")
    if not base:
        return {}
    order = ["gateway", *(service for service in SERVICES if service != "gateway"), DISCORD_BOT]
    return {"WEE5_METRICS_PORT": str(int(base) + order.index(name))}


class Supervisor:
    """The processes: started, their output relayed, restarted, stopped in order."""

    def __init__(self, env: dict[str, str], out: BinaryIO) -> None:
        self.env = env
        self.out = out
        self.width = max(len(name) for name in (*SERVICES, DISCORD_BOT, "system"))
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.failed: str | None = None

    def say(self, name: str, line: bytes) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | ".encode()
        self.out.write(prefix + line.rstrip(b"\n") + b"\n")
        self.out.flush()

    async def keep(self, name: str) -> None:
        """Runs `name` until the stack stops, starting it again whenever it exits."""
        delay, early_exits = FIRST_RESTART_SECONDS, 0
        while not self.stopping.is_set():
            started = time.monotonic()
            output, child_output = os.pipe()
            # Room for a second of a busy process's lines (the default 64 KiB is a tenth of a
            # second of the gateway's access log under load): a process whose pipe is full
            # stops until this one, on the same cores, reads.
            with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: the default
                fcntl.fcntl(output, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"wee5_{name}",
                env={**self.env, **metrics_env(name)},
                stdout=child_output,
                stderr=child_output,
                process_group=0,
            )
            os.close(child_output)
            self.processes[name] = process
            self.say("system", f"{name} started (pid={process.pid})".encode())
            await self.relay(name, output)
            code = await process.wait()
            if self.stopping.is_set():
                self.say("system", f"{name} stopped (rc={code})".encode())
                return
            if time.monotonic() - started < EARLY_EXIT_SECONDS:
                early_exits += 1
            else:
                delay, early_exits = FIRST_RESTART_SECONDS, 0
            if early_exits >= EARLY_EXITS_TO_GIVE_UP and name == DISCORD_BOT:
                # Optional: a bad token stops the bot, not the platform.
                self.say("system", f"{name} cannot start (rc={code}): left stopped".encode())
                return
            if early_exits >= EARLY_EXITS_TO_GIVE_UP:
                self.say(
                    "system",
                    f"{name} exited (rc={code}) {early_exits} times as it "
                    "started: stopping everything".encode(),
                )
                self.failed = name
                self.stopping.set()
                return
            self.say(
                "system", f"{name} exited (rc={code}): starting it again in {delay:.0f} s".encode()
            )
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, LONGEST_RESTART_SECONDS)

    async def relay(self, name: str, fd: int) -> None:
        """Prefixes and passes on each line `name` prints until it closes its output."""
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE_BYTES: pass on what there is
                    line = await reader.read(MAX_LINE_BYTES)
                if not line:
                    return
                self.say(name, line)
        finally:
            transport.close()

    async def stop(self) -> None:
        """The gateway and the Discord bot first (the bot sends its pending activities to xp),
        then the services, each group with SIGTERM and a deadline."""
        for group in (("gateway", DISCORD_BOT), SERVICES[:-1]):
            running = [
                process
                for name, process in self.processes.items()
                if name in group and process.returncode is None
            ]
            for process in running:
                process.terminate()
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(process.wait() for process in running)),
                    STOP_TIMEOUT_SECONDS,
                )
            except TimeoutError:
                for process in running:
                    if process.returncode is None:
                        self.say("system", f"pid {process.pid} did not stop: killed".encode())
                        process.kill()


async def supervise(env: dict[str, str], base_url: str, settings: KitSettings) -> int:
    supervisor = Supervisor(env, sys.stdout.buffer)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, supervisor.stopping.set)
    keepers = [asyncio.create_task(supervisor.keep(name)) for name in processes(env)]
    announcer = asyncio.create_task(announce_when_ready(base_url, settings))
    await supervisor.stopping.wait()
    await supervisor.stop()
    await asyncio.gather(*keepers)
    announcer.cancel()
    return 1 if supervisor.failed else 0


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
    if not env.get("WEE5_DISCORD_BOT_TOKEN"):
        print("up: Discord bot off: set WEE5_DISCORD_BOT_TOKEN to run it", flush=True)
    with terminal_of_our_own():
        return asyncio.run(supervise(env, f"http://127.0.0.1:{port}", settings))


if __name__ == "__main__":
    sys.exit(main())
