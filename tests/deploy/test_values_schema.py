"""values.schema.json refuses bad values before anything renders."""

from __future__ import annotations

import pytest

from tests.deploy.chart import Helm


def test_a_value_of_the_wrong_type_is_refused_naming_it(helm: Helm) -> None:
    error = helm.render_error("gateway.replicaCount=two")
    assert "/gateway/replicaCount" in error
    assert "want integer" in error


def test_an_unknown_key_is_refused(helm: Helm) -> None:
    error = helm.render_error("xp.replicas=3")
    assert "replicas" in error
    assert "not allowed" in error


def test_a_secret_value_cannot_be_inlined(helm: Helm) -> None:
    error = helm.render_error("gateway.secretEnv.WEE5_JWT_SECRET.value=hunter2hunter2")
    assert "/gateway/secretEnv/WEE5_JWT_SECRET" in error


@pytest.mark.parametrize(
    "setting",
    [
        "config.extraEnv.WEE5_STRIPE_SECRET_KEY=sk_live_x",
        "xp.config.WEE5_WHOP_API_KEY=key",
        "gateway.config.WEE5_DATABASE_URL=postgresql://u:p@db/wee5",
        "billing.config.WEE5_SENTRY_DSN=https://k@sentry.example/1",
    ],
)
def test_a_setting_that_looks_secret_is_refused_in_config(helm: Helm, setting: str) -> None:
    error = helm.render_error(setting)
    assert "invalid propertyName" in error


def test_a_setting_the_chart_derives_cannot_be_overridden_in_config(helm: Helm) -> None:
    error = helm.render_error("gateway.config.WEE5_XP_ADDR=elsewhere:50051")
    assert "invalid propertyName 'WEE5_XP_ADDR'" in error


def test_a_workload_without_resource_limits_is_refused(helm: Helm) -> None:
    error = helm.render_error("billing.resources.limits=null")
    assert "/billing/resources" in error
    assert "limits" in error


def test_root_is_refused_as_the_container_user(helm: Helm) -> None:
    error = helm.render_error("securityContext.runAsUser=0")
    assert "/securityContext/runAsUser" in error


def test_an_unknown_storage_backend_is_refused(helm: Helm) -> None:
    error = helm.render_error("resources.storage.backend=ftp")
    assert "/resources/storage/backend" in error


def test_s3_storage_needs_a_bucket(helm: Helm) -> None:
    error = helm.render_error("resources.storage.backend=s3")
    assert "/resources/storage/s3/bucket" in error


def test_a_grpc_call_to_an_unknown_service_is_refused(helm: Helm) -> None:
    error = helm.render_error("rewards.grpcCalls={ledger}")
    assert "/rewards/grpcCalls/0" in error


def test_a_task_must_belong_to_a_service(helm: Helm) -> None:
    error = helm.render_error(
        "tasks.jobs.cleanup.enabled=true",
        "tasks.jobs.cleanup.service=janitor",
        "tasks.jobs.cleanup.schedule=0 * * * *",
        "tasks.jobs.cleanup.activeDeadlineSeconds=60",
    )
    assert "/tasks/jobs/cleanup/service" in error


def test_a_disruption_budget_takes_one_bound(helm: Helm) -> None:
    error = helm.render_error("xp.pdb.minAvailable=1", "xp.pdb.maxUnavailable=1")
    assert "/xp/pdb" in error
