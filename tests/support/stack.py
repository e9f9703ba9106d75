"""Starts the platform the way `make up` does (scripts/up.py as a child process) with the
tests' own settings, and stops it with Ctrl-C. Used by the end-to-end tests and `make bench`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port, grant_platform_admin

ROOT = Path(__file__).resolve().parents[2]
SECRET = "ws_" + "5e" * 32
SERVICES = ("xp", "rewards", "benchmarks", "resources", "billing")


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def stack_env(test_env: dict[str, str], tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a stack of the tests' own: its own ports, storage and secret."""
    port, files_port = free_port(), free_port()
    return {
        **os.environ,
        **test_env,
        "WEE5_GATEWAY_PORT": str(port),
        # Where the pages are: the file endpoint lets them upload from the browser (CORS).
        "WEE5_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WEE5_WHOP_WEBHOOK_SECRET": SECRET,
        "WEE5_LOG_LEVEL": "INFO",
        **{f"WEE5_{name.upper()}_ADDR": f"127.0.0.1:{free_port()}" for name in SERVICES},
        # The resources process's file endpoint and local storage, away from a `make up`.
        "WEE5_RESOURCES_HTTP_PORT": str(files_port),
        "WEE5_RESOURCES_PUBLIC_URL": f"http://127.0.0.1:{files_port}",
        "WEE5_STORAGE_DIR": str(tmp / "storage"),
        **extra,
    }


def start_stack(test_env: dict[str, str], tmp: Path, **extra: str) -> Stack:
    return launch_stack(stack_env(test_env, tmp, **extra), tmp)


def launch_stack(env: dict[str, str], tmp: Path, ready_seconds: float = 90) -> Stack:
    """Starts `make up`'s process manager with `env` (again, after a stop: same ports and
    storage) and waits until /readyz says ready (for at most `ready_seconds`)."""
    port = env["WEE5_GATEWAY_PORT"]
    log = tmp / f"stack-{port}-{time.time_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "up.py")],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(f"http://127.0.0.1:{port}", env, process, log)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the stack exited with {process.returncode}:\n{stack.output()}")
        try:
            if httpx.get(f"{stack.base_url}/readyz", timeout=1).status_code == 200:
                # Migrated by now: the tokens tests and benches mint as platform admin work.
                with ThreadPoolExecutor(1) as thread:  # the caller may be inside a loop
                    thread.submit(
                        asyncio.run, grant_platform_admin(env["WEE5_DATABASE_URL"])
                    ).result()
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_stack(stack)
    raise AssertionError(f"the stack was not ready within {ready_seconds} s:\n{stack.output()}")


def stop_stack(stack: Stack) -> None:
    """Ctrl-C, as a developer would; every process must drain and exit."""
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        # Each service runs in a process group of its own (scripts/up.py): kill them all.
        for pid in (*descendants(stack.process.pid), stack.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the stack did not stop on Ctrl-C:\n{stack.output()}") from None


def descendants(root: int) -> list[int]:
    """The pids of every process under `root` (children first), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            parent = int(status.split("PPid:")[1].split()[0])
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def service_pids(stack: Stack) -> dict[str, int]:
    """{service: pid} of the stack's processes: children of scripts/up.py, no shell between."""
    found = {}
    for pid in descendants(stack.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1] == b"-m" and argv[2].startswith(b"wee5_"):
            found[argv[2].decode().removeprefix("wee5_")] = pid
    return found
