"""The Discord bot's workload: absent unless enabled; enabled, one pod running
`python -m wee5_discord` with its token from the Secret, probed over HTTP, reaching only DNS,
xp, rewards and HTTPS (Discord), and admitted by xp's and rewards' policies."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.deploy.chart import PRODUCTION_VALUES, RELEASE, Helm, Manifests
from tests.deploy.network import Endpoint, NetworkPolicies
from tests.deploy.test_kubernetes_schemas import invalid_objects
from tests.deploy.test_network_policies import INTERNET, KUBE_DNS, components

ENABLED = "discord.enabled=true"


@pytest.fixture(scope="module")
def with_bot(helm: Helm) -> Manifests:
    return helm.render(ENABLED, values=(PRODUCTION_VALUES,), name="production with the bot")


def test_the_bot_is_not_deployed_unless_enabled(manifests: Manifests) -> None:
    assert "discord" not in {pod.component for pod in manifests.pods()}
    assert not [obj for obj in manifests.objects if obj["metadata"]["name"].endswith("-discord")]


def test_the_enabled_bot_is_one_pod_with_its_token_from_the_secret(with_bot: Manifests) -> None:
    deployment = with_bot.deployment("discord")
    spec = deployment["spec"]
    (container,) = spec["template"]["spec"]["containers"]

    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert container["command"] == ["python", "-m", "wee5_discord"]
    token = next(e for e in container["env"] if e["name"] == "WEE5_DISCORD_BOT_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["key"] == "discord-bot-token"
    assert "optional" not in token["valueFrom"]["secretKeyRef"]  # enabled without it: an error
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    config = with_bot.get("ConfigMap", f"{RELEASE}-discord")["data"]
    assert config["WEE5_DISCORD_HEALTH_PORT"] == str(container["ports"][0]["containerPort"])
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}


def test_the_bot_reaches_xp_rewards_and_discord_and_nothing_reaches_it(
    with_bot: Manifests,
) -> None:
    policies = NetworkPolicies(with_bot)
    pods = components(with_bot)
    bot = Endpoint.of(pods["discord"][0])

    for service in ("xp", "rewards"):
        target = pods[service][0]
        port = target.port_number("grpc")
        assert port is not None
        assert policies.allows(bot, Endpoint.of(target), port), service
    for service in ("benchmarks", "resources", "billing"):
        target = pods[service][0]
        port = target.port_number("grpc")
        assert port is not None
        assert not policies.allows(bot, Endpoint.of(target), port), service
    assert policies.allows(bot, INTERNET, 443)
    assert policies.allows(bot, KUBE_DNS, 53, "UDP")
    assert not policies.allows(bot, Endpoint(address="10.20.0.5"), 5432)  # no database
    gateway = Endpoint.of(pods["gateway"][0])
    assert not policies.allows(gateway, bot, 8087)


def test_the_shard_count_is_passed_when_set(helm: Helm) -> None:
    rendered = helm.render(ENABLED, "discord.shardCount=4")

    assert (
        rendered.get("ConfigMap", f"{RELEASE}-discord")["data"]["WEE5_DISCORD_SHARD_COUNT"] == "4"
    )


def test_the_bot_objects_are_valid_for_kubernetes(with_bot: Manifests) -> None:
    bot_objects = Manifests(
        "the bot", [o for o in with_bot.objects if o["metadata"]["name"].endswith("-discord")]
    )

    assert {o["kind"] for o in bot_objects.objects} == {
        "ConfigMap",
        "ServiceAccount",
        "Deployment",
        "NetworkPolicy",
    }
    assert invalid_objects(bot_objects, kubernetes_validate.latest_version()) == []


def test_with_metrics_on_prometheus_may_scrape_the_bot(helm: Helm) -> None:
    rendered = helm.render(ENABLED, "metrics.enabled=true", values=(PRODUCTION_VALUES,))
    (container,) = rendered.deployment("discord")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    policy = rendered.get("NetworkPolicy", f"{RELEASE}-discord")

    assert "metrics" in ports
    assert [rule["ports"] for rule in policy["spec"]["ingress"]] == [
        [{"port": ports["metrics"], "protocol": "TCP"}]
    ]
