"""Every rendered object is a valid Kubernetes object (strict: no unknown fields) for the
oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.deploy import crds
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
    assert invalid_objects(manifests, version) == []


@pytest.mark.parametrize("version", [kubernetes_validate.latest_version()], ids=["newest"])
def test_every_object_with_the_monitoring_values_is_valid(
    monitoring_manifests: Manifests, version: str
) -> None:
    kinds = {obj["kind"] for obj in monitoring_manifests.objects}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert invalid_objects(monitoring_manifests, version) == []


def invalid_objects(manifests: Manifests, version: str) -> list[str]:
    """Built-in kinds by kubernetes_validate, the Prometheus Operator's by their CRDs."""
    problems = []
    for obj in manifests.objects:
        name = f"{obj['kind']} {obj['metadata']['name']}"
        if crds.is_operator_kind(obj):
            problems += [f"{name}: {problem}" for problem in crds.problems(obj)]
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name}: {error.message}")
    return problems
