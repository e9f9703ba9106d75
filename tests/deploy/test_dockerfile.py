"""The rules of the one container image, read from the Dockerfile (CI has no Docker daemon
or registry to build it; tests/deploy/test_image_environment.py builds its environment)."""

from __future__ import annotations

import re

import yaml

from tests.deploy.chart import CHART
from tests.deploy.dockerfile import DOCKERFILE, DOCKERIGNORE, Stage, run_words, stages

ARGS, STAGES = stages(DOCKERFILE.read_text())
BUILDER, RUNTIME = STAGES[0], STAGES[-1]
BUILD_TOOLS = {"apt-get", "apt", "apk", "gcc", "g++", "cc", "make", "build-essential", "uv"}


def context_sources(stage: Stage) -> list[str]:
    """What a stage copies from the build context (not from another stage)."""
    sources = []
    for arguments in stage.all("COPY"):
        words = arguments.split()
        if any(word.startswith("--from=") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def test_the_image_is_built_in_stages_from_one_base() -> None:
    assert len(STAGES) >= 2
    assert BUILDER.name == "builder"
    # The virtual environment's interpreter links to the base image's Python.
    assert BUILDER.base == RUNTIME.base == "${PYTHON_IMAGE}"
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", ARGS["PYTHON_IMAGE"])


def test_the_builder_installs_exactly_the_lock_without_dev_tools() -> None:
    assert "uv.lock" in context_sources(BUILDER)
    syncs = [command for command in BUILDER.all("RUN") if "uv sync" in command]
    assert syncs
    for command in syncs:
        assert "--frozen" in command
        assert "--no-dev" in command
        assert "--no-editable" in command


def test_the_runtime_holds_only_the_virtual_environment_and_fonts_from_the_builder() -> None:
    copies = RUNTIME.all("COPY")
    assert copies == [
        "--from=builder /app/.venv /app/.venv",
        # The rank cards' fonts, installed from Debian's package in the builder.
        "--from=builder /usr/share/fonts/truetype/dejavu /usr/share/fonts/truetype/dejavu",
    ]
    assert context_sources(RUNTIME) == []
    env = " ".join(RUNTIME.all("ENV"))
    assert 'PATH="/app/.venv/bin:' in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # the root filesystem is read-only


def test_the_runtime_has_no_build_tools_or_package_installs() -> None:
    words = run_words(RUNTIME)
    assert not BUILD_TOOLS & set(words), BUILD_TOOLS & set(words)
    assert "install" not in words


def test_the_runtime_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = RUNTIME.all("USER")
    uid, _, gid = user.partition(":")
    # runAsNonRoot can only check a numeric user.
    assert uid.isdigit(), "USER must be a numeric uid"
    assert int(uid) > 0, "USER must not be root"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert int(uid) == values["securityContext"]["runAsUser"]
    assert int(gid) == values["securityContext"]["runAsGroup"]
    assert f"--uid {uid}" in " ".join(RUNTIME.all("RUN"))


def test_the_default_command_runs_a_service_module() -> None:
    (command,) = RUNTIME.all("CMD")
    assert re.fullmatch(r'\["python", "-m", "wee5_\w+"\]', command)


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the context starts empty and lists what goes in"
    included = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for source in context_sources(BUILDER):
        source = source.rstrip("/")
        assert any(source == p or source.startswith(p + "/") for p in included), source
    for excluded in ("**/.venv/", "**/__pycache__/"):
        assert excluded in patterns
