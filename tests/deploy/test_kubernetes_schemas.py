"""Every rendered object is a valid Kubernetes object (strict: no unknown fields) for the
oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import CHART, Manifests


def oldest_supported() -> str:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=(\d+\.\d+)\.\d+(-0)?", constraint)
    assert match, constraint
    return f"{match.group(1)}.0"


@pytest.mark.parametrize(
    "version", [oldest_supported(), kubernetes_validate.latest_version()], ids=["oldest", "newest"]
)
def test_every_object_is_valid_for_kubernetes(manifests: Manifests, version: str) -> None:
    problems = []
    for obj in manifests.objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: {error.message}")
    assert problems == []
