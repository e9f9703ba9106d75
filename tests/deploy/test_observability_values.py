"""The chart's error reporting and tracing settings: the release every process reports, the
OTLP endpoint, and the egress opened for them."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.deploy.chart import CHART, RELEASE, SERVICES, Helm, Manifests
from tests.deploy.network import Endpoint, NetworkPolicies

COLLECTOR = Endpoint(labels={"app": "otel-collector"}, namespace="observability")
APP_VERSION = str(yaml.safe_load(Path(CHART, "Chart.yaml").read_text())["appVersion"])


def shared_config(manifests: Manifests) -> dict[str, str]:
    data: dict[str, str] = manifests.get("ConfigMap", f"{RELEASE}-config")["data"]
    return data


def test_by_default_processes_report_the_chart_version_and_do_not_trace(
    default_manifests: Manifests,
) -> None:
    config = shared_config(default_manifests)

    assert config["WEE5_RELEASE"] == APP_VERSION
    assert config["WEE5_ENVIRONMENT"] == "production"
    assert not [key for key in config if key.startswith("OTEL_")]
    policies = NetworkPolicies(default_manifests)
    for pod in default_manifests.pods():
        assert not policies.allows(Endpoint.of(pod), COLLECTOR, 4318), pod.owner_name


def test_an_otlp_endpoint_turns_tracing_on_everywhere_with_the_egress_given(helm: Helm) -> None:
    manifests = helm.render(
        "image.tag=2.3.4",
        "observability.otlpEndpoint=http://otel-collector.observability:4318",
        "observability.egress[0].ports[0].port=4318",
        "observability.egress[0].to[0].namespaceSelector.matchLabels"
        r".kubernetes\.io/metadata\.name=observability",
    )

    config = shared_config(manifests)
    assert config["WEE5_RELEASE"] == "2.3.4"
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert config["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    policies = NetworkPolicies(manifests)
    reaching = {
        pod.component
        for pod in manifests.pods()
        if policies.allows(Endpoint.of(pod), COLLECTOR, 4318)
    }
    assert reaching >= set(SERVICES)


def test_an_otlp_endpoint_that_is_not_a_url_is_refused(helm: Helm) -> None:
    error = helm.render_error("observability.otlpEndpoint=otel-collector:4318")

    assert "otlpEndpoint" in error
