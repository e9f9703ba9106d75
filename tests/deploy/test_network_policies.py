"""Who may reach whom under the chart's NetworkPolicies, evaluated pod by pod."""

from __future__ import annotations

from tests.deploy.chart import GRPC_SERVICES, RELEASE, Helm, Manifests, Pod
from tests.deploy.network import Endpoint, NetworkPolicies

# The gRPC callers of each service: the gateway calls every service; rewards and resources
# ask xp for a member's Whop membership.
CALLERS = {
    "xp": {"gateway", "rewards", "resources"},
    "rewards": {"gateway"},
    "benchmarks": {"gateway"},
    "resources": {"gateway"},
    "billing": {"gateway"},
}
# Components that call third-party HTTPS APIs (Whop, MEE6, Discord, Stripe, S3).
HTTPS_CALLERS = {"gateway", "xp", "rewards", "resources", "billing", "xp-tasks", "billing-tasks"}

INGRESS_CONTROLLER = Endpoint(
    labels={"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx"
)
KUBE_DNS = Endpoint(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
INTERNET = Endpoint(address="93.184.216.34")
PRIVATE_HOST = Endpoint(address="10.99.0.10")


def components(manifests: Manifests) -> dict[str, list[Pod]]:
    by_component: dict[str, list[Pod]] = {}
    for pod in manifests.pods():
        by_component.setdefault(pod.component, []).append(pod)
    return by_component


def callers_of(manifests: Manifests, target: Pod, port: int) -> set[str]:
    policies = NetworkPolicies(manifests)
    return {
        pod.component
        for pod in manifests.pods()
        if pod is not target and policies.allows(Endpoint.of(pod), Endpoint.of(target), port)
    }


def test_every_pod_of_the_release_is_denied_all_traffic_by_default(manifests: Manifests) -> None:
    deny = manifests.get("NetworkPolicy", f"{RELEASE}-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    for pod in manifests.pods():
        assert NetworkPolicies(manifests).selecting(Endpoint.of(pod), "Ingress"), pod.owner_name
        assert deny["spec"]["podSelector"]["matchLabels"].items() <= pod.labels.items()


def test_each_grpc_service_accepts_exactly_the_pods_that_call_it(manifests: Manifests) -> None:
    pods = components(manifests)
    for service in GRPC_SERVICES:
        target = pods[service][0]
        grpc_port = target.port_number("grpc")
        assert grpc_port is not None
        assert callers_of(manifests, target, grpc_port) == CALLERS[service], service


def test_benchmarks_accepts_only_the_gateway(manifests: Manifests) -> None:
    policies = NetworkPolicies(manifests)
    pods = components(manifests)
    benchmarks = Endpoint.of(pods["benchmarks"][0])
    assert policies.allows(Endpoint.of(pods["gateway"][0]), benchmarks, 50053)
    for other in ("xp", "rewards", "resources", "billing", "xp-tasks", "migrate"):
        assert not policies.allows(Endpoint.of(pods[other][0]), benchmarks, 50053), other
    assert not policies.allows(INGRESS_CONTROLLER, benchmarks, 50053)


def test_nothing_reaches_tasks_migrations_or_unlisted_ports(manifests: Manifests) -> None:
    for pod in manifests.pods():
        for port in (80, 443, 8080, 9090, *pod.listening_ports):
            expected = set()
            if pod.component in CALLERS and port == pod.port_number("grpc"):
                expected = CALLERS[pod.component]
            if pod.component == "gateway" and port == pod.port_number("http"):
                expected = {"smoke-test"}  # helm test's readiness check
            assert callers_of(manifests, pod, port) == expected, (pod.owner_name, port)


def test_the_gateway_accepts_the_ingress_controller_and_nothing_else(
    manifests: Manifests,
) -> None:
    policies = NetworkPolicies(manifests)
    gateway = Endpoint.of(components(manifests)["gateway"][0])
    assert policies.allows(INGRESS_CONTROLLER, gateway, 8000)
    assert not policies.allows(INGRESS_CONTROLLER, gateway, 50051)
    assert not policies.allows(Endpoint(labels={"app": "any"}, namespace="default"), gateway, 8000)
    assert not policies.allows(Endpoint(labels={"app": "neighbour"}), gateway, 8000)


def test_the_file_endpoint_is_open_to_the_ingress_controller_only_for_local_storage(
    default_manifests: Manifests, production_manifests: Manifests
) -> None:
    local = default_manifests
    resources = Endpoint.of(components(local)["resources"][0])
    assert NetworkPolicies(local).allows(INGRESS_CONTROLLER, resources, 8010)
    assert not NetworkPolicies(local).allows(INGRESS_CONTROLLER, resources, 50054)
    s3 = production_manifests  # presigned S3 URLs: nothing of ours to fetch files from
    resources = Endpoint.of(components(s3)["resources"][0])
    assert not NetworkPolicies(s3).allows(INGRESS_CONTROLLER, resources, 8010)


def test_only_the_services_that_call_providers_reach_https(manifests: Manifests) -> None:
    policies = NetworkPolicies(manifests)
    reaching = {
        pod.component
        for pod in manifests.pods()
        if policies.allows(Endpoint.of(pod), INTERNET, 443)
    }
    assert reaching == HTTPS_CALLERS


def test_every_workload_resolves_names_and_reaches_postgres(manifests: Manifests) -> None:
    policies = NetworkPolicies(manifests)
    postgres = Endpoint(address="10.20.0.5")
    for pod in manifests.pods():
        if pod.component == "smoke-test":
            continue
        source = Endpoint.of(pod)
        assert policies.allows(source, KUBE_DNS, 53, "UDP"), pod.owner_name
        assert policies.allows(source, KUBE_DNS, 53, "TCP"), pod.owner_name
        assert policies.allows(source, postgres, 5432), pod.owner_name


def test_migrations_reach_only_dns_and_postgres(manifests: Manifests) -> None:
    policies = NetworkPolicies(manifests)
    migrate = Endpoint.of(components(manifests)["migrate"][0])
    assert not policies.allows(migrate, Endpoint(address="10.20.1.5"), 6379)
    assert not policies.allows(migrate, Endpoint(address="10.20.2.5"), 4222)
    assert not policies.allows(migrate, INTERNET, 443)
    xp = Endpoint.of(components(manifests)["xp"][0])
    assert not policies.allows(migrate, xp, 50051)


def test_production_values_keep_stores_in_their_subnets_and_https_off_private_ranges(
    production_manifests: Manifests,
) -> None:
    policies = NetworkPolicies(production_manifests)
    xp = Endpoint.of(components(production_manifests)["xp"][0])
    assert policies.allows(xp, Endpoint(address="10.20.0.5"), 5432)
    assert not policies.allows(xp, Endpoint(address="10.30.0.5"), 5432)
    assert policies.allows(xp, Endpoint(address="10.20.1.5"), 6379)
    assert policies.allows(xp, Endpoint(address="10.20.2.5"), 4222)
    assert policies.allows(xp, INTERNET, 443)
    assert not policies.allows(xp, PRIVATE_HOST, 443)


def test_a_call_declared_in_values_opens_both_ends(helm: Helm) -> None:
    manifests = helm.render("benchmarks.grpcCalls={xp}")
    xp = components(manifests)["xp"][0]
    assert callers_of(manifests, xp, 50051) == {"gateway", "rewards", "resources", "benchmarks"}


def test_tasks_may_call_what_their_service_calls(helm: Helm) -> None:
    manifests = helm.render("xp.grpcCalls={billing}")
    billing = components(manifests)["billing"][0]
    assert callers_of(manifests, billing, 50055) == {"gateway", "xp", "xp-tasks"}


def test_the_helm_test_pod_reaches_only_the_gateway(manifests: Manifests) -> None:
    policies = NetworkPolicies(manifests)
    pods = components(manifests)
    smoke = Endpoint.of(pods["smoke-test"][0])
    assert policies.allows(smoke, KUBE_DNS, 53, "UDP")
    assert policies.allows(smoke, Endpoint.of(pods["gateway"][0]), 8000)
    assert not policies.allows(smoke, Endpoint.of(pods["xp"][0]), 50051)
    assert not policies.allows(smoke, Endpoint(address="10.20.0.5"), 5432)
    assert not policies.allows(smoke, INTERNET, 443)


def test_without_ingress_controllers_nothing_outside_reaches_the_public_ports(helm: Helm) -> None:
    manifests = helm.render("networkPolicy.ingressControllers=null")
    policies = NetworkPolicies(manifests)
    pods = components(manifests)
    for outsider in (INGRESS_CONTROLLER, Endpoint(labels={}, namespace="default")):
        assert not policies.allows(outsider, Endpoint.of(pods["gateway"][0]), 8000)
        assert not policies.allows(outsider, Endpoint.of(pods["resources"][0]), 8010)


def test_network_policies_can_be_left_to_the_cluster(helm: Helm) -> None:
    assert helm.render("networkPolicy.enabled=false").of_kind("NetworkPolicy") == []
