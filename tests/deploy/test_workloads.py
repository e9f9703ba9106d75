"""Rules every workload of the chart keeps, checked on the manifests `helm template` renders
with the default values and with deploy/k8s/values-production.yaml."""

from __future__ import annotations

import re

import pytest

from tests.deploy.chart import (
    CHART,
    GRPC_SERVICES,
    PRODUCTION_VALUES,
    RELEASE,
    SERVICES,
    Helm,
    Manifests,
    Obj,
)
from wee5_kit.grpc import LIVENESS

# Settings that must never sit in a ConfigMap (they are secretKeyRefs).
SECRET_LOOKING = re.compile(
    r"SECRET|TOKEN|PASSWORD|API_KEY|ACCESS_KEY|PRIVATE_KEY|_DSN$|DATABASE_URL|REDIS_URL|NATS_URL"
)


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_chart_passes_helm_lint_strict(helm: Helm, values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in values:
        args += ["--values", str(path)]
    result = helm.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_container_runs_as_non_root_on_a_read_only_root_without_privileges(
    manifests: Manifests,
) -> None:
    pods = manifests.pods()
    assert len(pods) >= len(SERVICES)
    for pod in pods:
        assert pod.spec["securityContext"]["runAsNonRoot"] is True, pod.owner_name
        assert pod.spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod.spec["automountServiceAccountToken"] is False, pod.owner_name
        for container in pod.containers:
            where = f"{pod.owner_kind} {pod.owner_name} container {container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] > 0, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_every_container_writes_to_tmp_on_an_empty_dir(manifests: Manifests) -> None:
    for pod in manifests.pods():
        volumes = {volume["name"]: volume for volume in pod.spec["volumes"]}
        for container in pod.containers:
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{pod.owner_name}: no /tmp mount"
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{pod.owner_name}: /tmp not emptyDir"


def test_every_container_has_cpu_and_memory_requests_and_limits(manifests: Manifests) -> None:
    for pod in manifests.pods():
        for container in pod.containers:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, (
                    f"{pod.owner_name} {bound}: {resources.get(bound)}"
                )


def test_every_process_runs_from_the_one_image(manifests: Manifests) -> None:
    images = {container["image"] for pod in manifests.pods() for container in pod.containers}
    assert len(images) == 1, images


def test_each_service_runs_its_own_module_without_migrating(manifests: Manifests) -> None:
    deployments = manifests.of_kind("Deployment")
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(
        f"{RELEASE}-{service}" for service in SERVICES
    )
    for service in SERVICES:
        (container,) = manifests.deployment(service)["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"wee5_{service}"]
        # The hook Jobs migrated before the new pods start.
        assert container["args"] == ["serve", "--no-migrate"]


def test_grpc_services_are_probed_over_the_grpc_health_service(manifests: Manifests) -> None:
    for service in GRPC_SERVICES:
        (container,) = manifests.deployment(service)["spec"]["template"]["spec"]["containers"]
        grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        # Alive whatever the dependencies do (an outage must not restart pods); ready not.
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": grpc_port, "service": LIVENESS}, probe
        assert container["readinessProbe"]["grpc"] == {"port": grpc_port}


def test_gateway_is_probed_on_healthz_and_readyz(manifests: Manifests) -> None:
    (container,) = manifests.deployment("gateway")["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]


def test_no_secret_is_rendered_and_secret_settings_come_only_from_secret_key_refs(
    manifests: Manifests,
) -> None:
    assert manifests.of_kind("Secret") == []
    for pod in manifests.pods():
        for container in pod.containers:
            for env in container.get("env", []):
                assert "value" not in env, f"{pod.owner_name}: {env['name']} inlined"
                assert set(env["valueFrom"]) == {"secretKeyRef"}, (pod.owner_name, env)
    for config_map in manifests.of_kind("ConfigMap"):
        for key in config_map["data"]:
            assert not SECRET_LOOKING.search(key), f"{config_map['metadata']['name']}: {key}"


def test_every_service_reads_the_infrastructure_urls_and_its_own_keys_from_secrets(
    default_manifests: Manifests,
) -> None:
    def secret_refs(service: str) -> dict[str, Obj]:
        (container,) = default_manifests.deployment(service)["spec"]["template"]["spec"][
            "containers"
        ]
        return {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}

    shared = {"WEE5_DATABASE_URL", "WEE5_REDIS_URL", "WEE5_NATS_URL", "WEE5_SENTRY_DSN"}
    for service in SERVICES:
        assert set(secret_refs(service)) >= shared, service
    gateway = secret_refs("gateway")
    assert gateway["WEE5_JWT_SECRET"] == {"name": "wee5", "key": "jwt-secret"}
    assert gateway["WEE5_WHOP_WEBHOOK_SECRET"] == {"name": "wee5", "key": "whop-webhook-secret"}
    assert secret_refs("billing")["WEE5_STRIPE_SECRET_KEY"]["key"] == "stripe-secret-key"
    assert secret_refs("resources")["WEE5_STORAGE_SIGNING_KEY"] == {
        "name": "wee5",
        "key": "storage-signing-key",
    }
    assert "WEE5_JWT_SECRET" not in secret_refs("benchmarks")
    # Provider keys are optional: a provider stays off until its key exists.
    assert secret_refs("xp")["WEE5_WHOP_API_KEY"]["optional"] is True


def test_secret_references_follow_the_configured_secret(helm: Helm) -> None:
    manifests = helm.render(
        "secrets.name=platform-keys", "secrets.env.WEE5_DATABASE_URL.secret=postgres-app"
    )
    (container,) = manifests.deployment("xp")["spec"]["template"]["spec"]["containers"]
    refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
    assert refs["WEE5_DATABASE_URL"] == {"name": "postgres-app", "key": "database-url"}
    assert refs["WEE5_REDIS_URL"] == {"name": "platform-keys", "key": "redis-url"}
    job = manifests.get("Job", f"{RELEASE}-migrate-xp")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "postgres-app"


def test_each_service_dials_and_listens_on_its_service_object(manifests: Manifests) -> None:
    common = manifests.get("ConfigMap", f"{RELEASE}-config")["data"]
    for service in GRPC_SERVICES:
        host, port = common[f"WEE5_{service.upper()}_ADDR"].rsplit(":", 1)
        svc = manifests.get("Service", host)
        assert int(port) in {p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc"}
        pod = manifests.deployment(service)["spec"]["template"]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        assert int(port) in {p["containerPort"] for p in container["ports"]}
        assert {ref["configMapRef"]["name"] for ref in container["envFrom"]} == {
            f"{RELEASE}-config",
            f"{RELEASE}-{service}",
        }


def test_pods_restart_when_their_settings_change(helm: Helm, default_manifests: Manifests) -> None:
    def checksum(manifests: Manifests, service: str) -> str:
        annotations = manifests.deployment(service)["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/config"]
        return value

    changed = helm.render("xp.config.WEE5_XP_COOLDOWN_SECONDS=30")
    assert checksum(changed, "xp") != checksum(default_manifests, "xp")
    assert checksum(changed, "rewards") == checksum(default_manifests, "rewards")


def test_every_service_has_a_disruption_budget_over_its_pods(manifests: Manifests) -> None:
    budgets = {pdb["metadata"]["name"]: pdb for pdb in manifests.of_kind("PodDisruptionBudget")}
    for service in SERVICES:
        pdb = budgets[f"{RELEASE}-{service}"]
        labels = manifests.deployment(service)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])


def test_autoscaling_is_optional_and_owns_the_replica_count(
    helm: Helm, default_manifests: Manifests
) -> None:
    assert default_manifests.of_kind("HorizontalPodAutoscaler") == []
    assert default_manifests.deployment("xp")["spec"]["replicas"] == 2
    scaled = helm.render("xp.autoscaling.enabled=true", "xp.autoscaling.maxReplicas=7")
    (hpa,) = scaled.of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{RELEASE}-xp",
    }
    assert hpa["spec"]["maxReplicas"] == 7
    assert "replicas" not in scaled.deployment("xp")["spec"]


def test_gateway_is_published_through_an_ingress_to_its_http_port(manifests: Manifests) -> None:
    ingress = manifests.get("Ingress", f"{RELEASE}-gateway")
    service = manifests.get("Service", f"{RELEASE}-gateway")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"] == {"name": "http"}
    assert "http" in {port["name"] for port in service["spec"]["ports"]}


def test_local_file_urls_can_be_published_through_their_own_ingress(helm: Helm) -> None:
    manifests = helm.render(
        "resources.ingress.enabled=true",
        "resources.ingress.hosts[0].host=files.example.com",
        "resources.ingress.hosts[0].paths[0].path=/",
        "resources.ingress.hosts[0].paths[0].pathType=Prefix",
        "resources.publicUrl=https://files.example.com",
    )
    ingress = manifests.get("Ingress", f"{RELEASE}-resources")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "files.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": f"{RELEASE}-resources",
        "port": {"name": "http"},
    }
    service = manifests.get("Service", f"{RELEASE}-resources")
    http = next(port for port in service["spec"]["ports"] if port["name"] == "http")
    assert http["port"] == 8010
    config = manifests.get("ConfigMap", f"{RELEASE}-resources")["data"]
    assert config["WEE5_RESOURCES_PUBLIC_URL"] == "https://files.example.com"
    assert config["WEE5_RESOURCES_HTTP_PORT"] == "8010"
    # The process listens on loopback unless told otherwise; the ingress needs the pod's IP.
    assert config["WEE5_RESOURCES_HTTP_HOST"] == "0.0.0.0"


def test_production_ingress_serves_the_api_host_over_tls(production_manifests: Manifests) -> None:
    ingress = production_manifests.get("Ingress", f"{RELEASE}-gateway")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["api.wee5.example.com"]
    assert ingress["spec"]["tls"][0]["hosts"] == ["api.wee5.example.com"]


def test_local_file_storage_lives_on_a_kept_volume_with_one_writer(
    default_manifests: Manifests,
) -> None:
    deployment = default_manifests.deployment("resources")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    claim = volumes["storage"]["persistentVolumeClaim"]["claimName"]
    pvc = default_manifests.get("PersistentVolumeClaim", claim)
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = default_manifests.get("ConfigMap", f"{RELEASE}-resources")["data"]
    assert config["WEE5_STORAGE_BACKEND"] == "local"
    assert config["WEE5_STORAGE_DIR"] == mounts["storage"]


def test_local_file_storage_refuses_several_replicas_on_one_volume(helm: Helm) -> None:
    error = helm.render_error("resources.replicaCount=3")
    assert "only one pod can use" in error
    shared = helm.render(
        "resources.replicaCount=3", "resources.storage.local.persistence.accessMode=ReadWriteMany"
    )
    assert shared.deployment("resources")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_s3_storage_gets_its_settings_from_values_and_its_keys_from_a_secret(
    production_manifests: Manifests,
) -> None:
    config = production_manifests.get("ConfigMap", f"{RELEASE}-resources")["data"]
    assert config["WEE5_STORAGE_BACKEND"] == "s3"
    assert config["WEE5_S3_BUCKET"] == "wee5-resources"
    assert "WEE5_STORAGE_DIR" not in config
    assert production_manifests.of_kind("PersistentVolumeClaim") == []
    (container,) = production_manifests.deployment("resources")["spec"]["template"]["spec"][
        "containers"
    ]
    refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
    assert refs["WEE5_S3_SECRET_ACCESS_KEY"] == {"name": "wee5-s3", "key": "secret-access-key"}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_an_image_digest_pins_every_process(helm: Helm) -> None:
    digest = "sha256:" + "ab" * 32
    manifests = helm.render("image.repository=registry.example.com/wee5", f"image.digest={digest}")
    images = {container["image"] for pod in manifests.pods() for container in pod.containers}
    assert images == {f"registry.example.com/wee5@{digest}"}
    assert "/image/digest" in helm.render_error("image.digest=latest")


def test_every_process_runs_as_production_so_local_conveniences_are_refused(
    manifests: Manifests,
) -> None:
    common = manifests.get("ConfigMap", f"{RELEASE}-config")["data"]
    assert common["WEE5_ENVIRONMENT"] == "production"


def test_the_gateway_believes_no_forwarded_address_unless_told_whose(
    default_manifests: Manifests, production_manifests: Manifests
) -> None:
    """`*` let any client name its own IP (X-Forwarded-For) and so a fresh per-IP budget
    on every request; the chart trusts nobody until the ingress's addresses are set."""
    gateway = f"{RELEASE}-gateway"
    assert default_manifests.get("ConfigMap", gateway)["data"]["WEE5_TRUSTED_PROXIES"] == ""
    production = production_manifests.get("ConfigMap", gateway)["data"]
    assert production["WEE5_TRUSTED_PROXIES"] == "10.40.0.0/16"
    for manifests in (default_manifests, production_manifests):
        trusted = manifests.get("ConfigMap", gateway)["data"]["WEE5_TRUSTED_PROXIES"]
        assert "*" not in trusted


def test_internal_tls_mounts_the_certificate_where_services_run_and_probes_in_plaintext(
    helm: Helm,
) -> None:
    manifests = helm.render("internalTls.enabled=true", "internalTls.serverName=wee5.internal")
    config = manifests.get("ConfigMap", f"{RELEASE}-config")["data"]
    assert config["WEE5_GRPC_TLS_CA_FILE"] == "/etc/wee5/grpc-tls/ca.crt"
    assert config["WEE5_GRPC_TLS_SERVER_NAME"] == "wee5.internal"
    assert config["WEE5_GRPC_HEALTH_PORT"] == "8086"
    for pod in manifests.pods():
        volumes = {volume["name"]: volume for volume in pod.spec["volumes"]}
        if pod.owner_kind in {"Job", "Pod"}:  # migrations and helm test call no service
            assert "grpc-tls" not in volumes, pod.owner_name
            continue
        assert volumes["grpc-tls"]["secret"]["secretName"] == "wee5-grpc-tls", pod.owner_name
        (container,) = pod.spec["containers"]
        assert {"name": "grpc-tls", "mountPath": "/etc/wee5/grpc-tls", "readOnly": True} in (
            container["volumeMounts"]
        )
    for service in GRPC_SERVICES:
        (container,) = manifests.deployment(service)["spec"]["template"]["spec"]["containers"]
        assert {"name": "health", "containerPort": 8086, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": 8086, "service": LIVENESS}, probe
        assert container["readinessProbe"]["grpc"] == {"port": 8086}


def test_every_process_reads_the_internal_token_from_the_secret_when_it_is_there(
    manifests: Manifests,
) -> None:
    for pod in manifests.pods():
        if pod.owner_kind in {"Job", "Pod"}:
            continue
        (container,) = pod.spec["containers"]
        refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
        assert refs["WEE5_INTERNAL_TOKEN"]["key"] == "internal-token", pod.owner_name
        assert refs["WEE5_INTERNAL_TOKEN"]["optional"] is True
        assert "grpc-tls" not in {volume["name"] for volume in pod.spec["volumes"]}
