"""Prometheus in the chart: every process's metrics port on its container and Service and in
its settings, a ServiceMonitor that scrapes them all, NetworkPolicies that let only the
scrapers in, and a PrometheusRule whose alerts use metrics the processes export."""

from __future__ import annotations

import copy
import re

from tests.deploy import crds
from tests.deploy.chart import ROOT, SERVICES, Helm, Manifests, Obj
from tests.deploy.network import Endpoint, NetworkPolicies

METRICS_PORT = 9100
PROMETHEUS = Endpoint(labels={"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
INGRESS_CONTROLLER = Endpoint(
    labels={"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx"
)


def services_selected(manifests: Manifests) -> dict[str, Obj]:
    [monitor] = manifests.of_kind("ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    return {
        service["metadata"]["labels"]["app.kubernetes.io/component"]: service
        for service in manifests.of_kind("Service")
        if wanted <= service["metadata"]["labels"].items()
    }


def test_the_service_monitor_scrapes_every_process_on_its_metrics_port(
    monitoring_manifests: Manifests,
) -> None:
    [monitor] = monitoring_manifests.of_kind("ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selected = services_selected(monitoring_manifests)
    assert set(selected) == set(SERVICES)
    for component, service in selected.items():
        [port] = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
        assert (port["port"], port["targetPort"]) == (METRICS_PORT, "metrics"), component
        pod_spec = monitoring_manifests.deployment(component)["spec"]["template"]["spec"]
        [container] = pod_spec["containers"]
        declared = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert declared["metrics"] == METRICS_PORT, component
    # Each process is told the port (WEE5_METRICS_PORT) by the settings every process shares.
    settings = [cm["data"] for cm in monitoring_manifests.of_kind("ConfigMap")]
    assert {"9100"} == {
        data["WEE5_METRICS_PORT"] for data in settings if "WEE5_METRICS_PORT" in data
    }


def test_only_the_scrapers_reach_the_metrics_port(monitoring_manifests: Manifests) -> None:
    policies = NetworkPolicies(monitoring_manifests)
    pods = {pod.component: pod for pod in monitoring_manifests.pods()}
    for component in SERVICES:
        target = Endpoint.of(pods[component])
        assert policies.allows(PROMETHEUS, target, METRICS_PORT), component
        assert not policies.allows(INGRESS_CONTROLLER, target, METRICS_PORT), component
        # A Prometheus pod's port only: other pods of the monitoring namespace stay out.
        other = Endpoint(labels={"app": "grafana"}, namespace="monitoring")
        assert not policies.allows(other, target, METRICS_PORT), component
        # Nor do the release's own pods scrape each other.
        gateway = Endpoint.of(pods["gateway"])
        assert not policies.allows(gateway, target, METRICS_PORT) or component == "gateway"


def test_the_alerts_cover_5xx_outbox_dead_rewards_and_consumers_with_exported_metrics(
    monitoring_manifests: Manifests,
) -> None:
    [rule] = monitoring_manifests.of_kind("PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "WEE5GatewayHigh5xxRate",
        "WEE5OutboxNotPublishing",
        "WEE5DeadRewards",
        "WEE5ConsumerBacklog",
        "WEE5RpcInternalErrors",
    }
    sources = "\n".join(
        path.read_text()
        for folder in ("libs", "services")
        for path in (ROOT / folder).glob("*/src/**/*.py")
    )
    for name, alert in alerts.items():
        used = set(re.findall(r"\bwee5_[a-z_]+", alert["expr"]))
        assert used, name
        for metric in used:
            family = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert f'"{family}"' in sources, f"{name} uses {metric}, which nothing exports"
        assert 'namespace="wee5"' in alert["expr"], name  # this release's series only


def test_the_crd_schemas_refuse_what_the_operator_would_drop(
    monitoring_manifests: Manifests,
) -> None:
    [monitor] = monitoring_manifests.of_kind("ServiceMonitor")
    [rule] = monitoring_manifests.of_kind("PrometheusRule")
    misspelt = copy.deepcopy(monitor)
    misspelt["spec"]["endpoints"][0]["intervall"] = "30s"
    wrong_type = copy.deepcopy(rule)
    wrong_type["spec"]["groups"][0]["rules"][0]["expr"] = {"sum": 1}

    assert crds.problems(monitor) == []
    assert crds.problems(rule) == []
    assert crds.problems(misspelt) != []
    assert crds.problems(wrong_type) != []


def test_metrics_off_leaves_no_port_setting_or_monitor(helm: Helm) -> None:
    manifests = helm.render(
        "metrics.enabled=false",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
    )

    assert manifests.of_kind("ServiceMonitor") == []
    assert manifests.of_kind("PrometheusRule") == []
    for pod in manifests.pods():
        assert METRICS_PORT not in pod.listening_ports, pod.owner_name
    for config in manifests.of_kind("ConfigMap"):
        assert "WEE5_METRICS_PORT" not in (config.get("data") or {})


def test_the_default_values_serve_metrics_without_needing_the_operator(
    default_manifests: Manifests,
) -> None:
    assert default_manifests.of_kind("ServiceMonitor") == []
    assert default_manifests.of_kind("PrometheusRule") == []
    for component in SERVICES:
        pod_spec = default_manifests.deployment(component)["spec"]["template"]["spec"]
        ports = {p["name"]: p["containerPort"] for p in pod_spec["containers"][0]["ports"]}
        assert ports["metrics"] == METRICS_PORT, component
