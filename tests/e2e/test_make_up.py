"""`make up` as a developer runs it: in a terminal, stopped with Ctrl-C, started again."""

from __future__ import annotations

import os
import pty
import select
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.stack import ROOT, stack_env, start_stack, stop_stack

pytestmark = pytest.mark.e2e


def _read(fd: int, until: str | None, seconds: float) -> str:
    """What the terminal shows until `until` appears (or, with None, until it closes)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal closed: everything on it has exited
            break
        if not chunk:
            break
        seen += chunk
        if until is not None and until.encode() in seen:
            break
    return seen.decode(errors="replace")


def test_ctrl_c_on_make_up_stops_everything_and_exits_zero(
    database_url: str, test_env: dict[str, str], tmp_path: Path
) -> None:
    env = stack_env(test_env, tmp_path, WEE5_DEMO="0")
    pid, fd = pty.fork()
    if pid == 0:  # the child: `make up` on a terminal of its own, as from a shell
        os.chdir(ROOT)
        os.execvpe("make", ["make", "up"], env)
    started = _read(fd, "Ctrl-C stops everything.", 90)
    assert "WEE5 is up" in started, started[-3000:]

    os.write(fd, b"\x03")  # Ctrl-C typed on the terminal: SIGINT to its foreground group
    stopped = _read(fd, None, 40)
    _, status = os.waitpid(pid, 0)
    os.close(fd)

    assert os.waitstatus_to_exitcode(status) == 0, stopped[-3000:]
    assert "Error" not in stopped, stopped[-3000:]
    assert "Interrupt" not in stopped, stopped[-3000:]


def test_without_a_jwt_secret_a_restart_keeps_everyone_signed_in(
    database_url: str, test_env: dict[str, str], tmp_path: Path
) -> None:
    """up.py signs with the key it keeps in .wee5/ (made on the first run, if need be)."""
    env = {**test_env, "WEE5_JWT_SECRET": ""}
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = start_stack(env, tmp_path / "first")
    try:
        registered = httpx.post(
            f"{first.base_url}/api/v1/auth/register",
            json={"email": f"{uuid.uuid4().hex}@example.test", "password": "a long password"},
        )
        assert registered.status_code == 201, registered.text
    finally:
        stop_stack(first)
    token = registered.json()["access_token"]

    second = start_stack(env, tmp_path / "second")
    try:
        me = httpx.get(f"{second.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    finally:
        stop_stack(second)

    assert me.status_code == 200, me.text
    assert (ROOT / ".wee5" / "jwt-secret").exists()
