"""scripts/up.py: its local key for access tokens, and what it refuses before starting."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.stack import ROOT


def _up() -> ModuleType:
    spec = importlib.util.spec_from_file_location("up", ROOT / "scripts" / "up.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_local_jwt_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    up = _up()
    path = tmp_path / ".wee5" / "jwt-secret"

    first = up.local_jwt_secret(path)
    second = up.local_jwt_secret(path)

    assert first == second
    assert len(first) >= 32  # the gateway refuses a shorter WEE5_JWT_SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it


def test_the_local_state_directory_is_ignored_by_git() -> None:
    assert "/.wee5/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_up_refuses_a_dev_plan_in_production_before_starting_anything() -> None:
    env = {**os.environ, "WEE5_DEV_PLAN": "enterprise", "WEE5_ENVIRONMENT": "production"}
    started = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "up.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode == 2
    assert started.stdout.startswith("up: refusing to start:")
    assert "WEE5_DEV_PLAN=enterprise" in started.stdout
    assert "system" not in started.stdout  # no process was started


def test_make_up_runs_the_discord_bot_only_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    up = _up()
    monkeypatch.setenv("WEE5_METRICS_BASE_PORT", "9100")

    without = up.processes({})
    with_token = up.processes({"WEE5_DISCORD_BOT_TOKEN": "token"})

    assert "discord" not in without
    assert with_token == (*without, "discord")
    assert up.metrics_env("discord") == {"WEE5_METRICS_PORT": "9106"}
