"""scripts/up.py's local key for access tokens."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path
from types import ModuleType

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
