"""`make up`'s process manager (scripts/up.py) as a developer meets it: a service that dies is
started again and the platform answers once more; Ctrl-C stops the gateway before the services
and exits 0; a service that cannot start stops the stack with its reason and exit status 1."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack, service_pids, start_stack, stop_stack

pytestmark = pytest.mark.e2e


def wait_until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.2)


def ready(stack: Stack) -> bool:
    try:
        return httpx.get(f"{stack.base_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_service_is_started_again_and_ctrl_c_stops_the_gateway_first(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    stack = start_stack(test_env, tmp_path)
    try:
        pids = service_pids(stack)
        assert set(pids) == {"xp", "rewards", "benchmarks", "resources", "billing", "gateway"}
        # The pid a developer sees is the service itself: killing it kills the service.
        os.kill(pids["xp"], signal.SIGKILL)
        wait_until(lambda: service_pids(stack).get("xp") not in (None, pids["xp"]), 10)
        wait_until(lambda: ready(stack), 30)
        assert stack.process.poll() is None
    finally:
        stop_stack(stack)
    assert stack.process.returncode == 0
    lines = stack.log.read_text().splitlines()
    assert any("xp exited (rc=-9): starting it again" in line for line in lines)
    stopped = [line.split("| ", 1)[1].split()[0] for line in lines if " stopped (rc=" in line]
    assert stopped[0] == "gateway", stopped
    assert sorted(stopped[1:]) == ["benchmarks", "billing", "resources", "rewards", "xp"]


def test_a_service_that_cannot_start_stops_the_stack_with_status_1(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    # Another program holds xp's port: xp exits as it starts, every time.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        xp_addr = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(AssertionError, match="the stack exited with 1") as refused:
            stop_stack(start_stack(test_env, tmp_path, WEE5_XP_ADDR=xp_addr))
    assert "xp exited" in str(refused.value)
    assert "times as it started: stopping everything" in str(refused.value)
