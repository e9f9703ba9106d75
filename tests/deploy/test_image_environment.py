"""The image's virtual environment, built the way the Dockerfile's builder stage builds it
(`uv sync --frozen --no-dev --no-editable` from the files it copies), then used without the
source tree: every command the chart runs starts, and every schema migrates from the
installed packages into a database of its own.

No docker here: the environment is built with uv exactly as the builder stage does, which is
what the image's commands depend on. It needs uv and Postgres and takes minutes, so it is
marked `infra`: `make test` runs it, `make chart-check` and `make test-unit` leave it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import RUN_ID
from tests.deploy.chart import ROOT, SERVICES, Manifests
from tests.deploy.test_jobs import SCHEDULES, cronjobs

pytestmark = pytest.mark.infra

# What the builder stage copies (Dockerfile), minus what .dockerignore keeps out.
CONTEXT = ("pyproject.toml", "uv.lock", "libs", "services")
IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".venv", "*.egg-info", ".pytest_cache", ".mypy_cache", "var"
)


def run(
    venv: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The image's python, outside any source tree, with only the given settings."""
    return subprocess.run(
        [str(venv / "bin" / "python"), *args],
        cwd=venv.parent,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# Runs `python -m <module> <args>` for several modules inside one interpreter (each would
# otherwise pay the imports again) and prints each one's exit code and output as JSON. What
# an entry point keeps out of its process (`wee5_kit.lean.keep_out`: None in sys.modules) is
# let in again before the next one, as each runs in a process of its own in the image.
RUN_MODULES = """
import contextlib, io, json, runpy, sys
results = {}
kept_out = {name for name, module in sys.modules.items() if module is None}
for name, module, *args in json.loads(sys.argv[1]):
    for blocked in [n for n, m in sys.modules.items() if m is None and n not in kept_out]:
        del sys.modules[blocked]
    sys.argv = [module, *args]
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except Exception as error:
            code, out = 1, io.StringIO(repr(error))
    results[name] = {"code": code, "output": out.getvalue()}
print(json.dumps(results))
"""


def run_modules(
    venv: Path, commands: dict[str, list[str]], env: dict[str, str] | None = None
) -> dict[str, tuple[int, str]]:
    """`python -m` each command (module first) in the image's python: exit code and output."""
    calls = [[name, *command] for name, command in commands.items()]
    result = run(venv, "-c", RUN_MODULES, json.dumps(calls), env=env)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: (answer["code"], answer["output"]) for name, answer in answers.items()}


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; `make infra` installs it, and the image is built with it")
    work = tmp_path_factory.mktemp("image")
    source, venv = work / "src", work / "app" / ".venv"
    source.mkdir()
    for name in CONTEXT:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=IGNORED)
        else:
            shutil.copy2(origin, source / name)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # The runtime stage gets only the environment.
    shutil.rmtree(source)
    return venv


@pytest.fixture(scope="session")
async def scratch_database_url(test_env: dict[str, str]) -> AsyncIterator[str]:
    url = make_url(test_env["WEE5_DATABASE_URL"]).set(database=f"wee5_test_{RUN_ID}_image")
    admin = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    yield url.render_as_string(hide_password=False)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    await admin.dispose()


def test_every_service_command_starts_from_the_installed_packages(image_venv: Path) -> None:
    results = run_modules(image_venv, {s: [f"wee5_{s}", "--help"] for s in SERVICES})
    for service, (code, output) in results.items():
        assert code == 0, f"{service}: {output}"
        assert "--no-migrate" in output, service


def test_the_environment_holds_no_development_tools(image_venv: Path) -> None:
    for module in ("pytest", "mypy", "ruff", "grpc_tools", "schemathesis"):
        result = run(image_venv, "-c", f"import {module}")
        assert result.returncode != 0, f"{module} is installed in the image"
    assert not (image_venv / "bin" / "ruff").exists()


async def test_every_schema_migrates_from_the_installed_packages(
    image_venv: Path, scratch_database_url: str
) -> None:
    results = run_modules(
        image_venv,
        {service: [f"wee5_{service}", "migrate"] for service in SERVICES},
        env={"WEE5_DATABASE_URL": scratch_database_url, "WEE5_LOG_LEVEL": "WARNING"},
    )
    for service, (code, output) in results.items():
        assert code == 0, f"{service}: {output[-2000:]}"
    engine = create_async_engine(scratch_database_url, poolclass=NullPool)
    async with engine.connect() as conn:
        for service in SERVICES:
            version = await conn.scalar(
                text(f'SELECT version_num FROM "{service}".alembic_version')
            )
            assert version, f"schema {service} has no migration applied"
    await engine.dispose()


def test_every_cronjob_command_names_a_job_of_its_tasks_module(
    image_venv: Path, default_manifests: Manifests
) -> None:
    jobs = cronjobs(default_manifests)
    assert set(jobs) == set(SCHEDULES)
    for name, cronjob in jobs.items():
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        _python, _m, module, job = container["command"]
        result = run(image_venv, "-m", module, "--help")
        assert result.returncode == 0, f"{name}: {module} does not start: {result.stderr}"
        assert job in result.stdout, f"{module} has no job {job}: {result.stdout}"
