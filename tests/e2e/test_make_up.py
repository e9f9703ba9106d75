"""`make up` as a developer runs it: in a terminal, stopped with Ctrl-C."""

from __future__ import annotations

import os
import pty
import select
import time
from pathlib import Path

import pytest

from tests.support.stack import ROOT, stack_env

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
