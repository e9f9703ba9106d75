"""The sync CronJobs and the migration hook Jobs the chart renders."""

from __future__ import annotations

from tests.deploy.chart import RELEASE, SERVICES, Helm, Manifests, Obj

# Job → (service whose tasks module runs it, schedule in UTC).
SCHEDULES = {
    "mee6-sync": ("xp", "*/15 * * * *"),
    "forum-sync": ("xp", "*/10 * * * *"),
    "profile-refresh": ("xp", "*/30 * * * *"),
    "reconcile": ("xp", "*/5 * * * *"),
    "close-streaks": ("xp", "5 0 * * *"),
    "billing-checks": ("billing", "30 3 * * *"),
}


def cronjobs(manifests: Manifests) -> dict[str, Obj]:
    return {job["metadata"]["labels"]["wee5.io/task"]: job for job in manifests.of_kind("CronJob")}


def test_every_sync_task_runs_on_its_schedule_through_its_services_tasks_module(
    manifests: Manifests,
) -> None:
    jobs = cronjobs(manifests)
    assert set(jobs) == set(SCHEDULES)
    for name, (service, schedule) in SCHEDULES.items():
        spec = jobs[name]["spec"]
        assert spec["schedule"] == schedule, name
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", f"wee5_{service}.tasks", name]
        assert pod["restartPolicy"] == "Never"
        # The task runs with its service's identity and settings.
        assert pod["serviceAccountName"] == f"{RELEASE}-{service}"
        assert {ref["configMapRef"]["name"] for ref in container["envFrom"]} == {
            f"{RELEASE}-config",
            f"{RELEASE}-{service}",
        }


def test_every_cronjob_forbids_overlap_and_is_bounded_in_time_and_history(
    manifests: Manifests,
) -> None:
    jobs = cronjobs(manifests)
    # Every sync task rendered, so the rules below are checked on each of them.
    assert set(jobs) == set(SCHEDULES)
    for name, job in jobs.items():
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", name
        assert spec["timeZone"] == "Etc/UTC", name
        assert spec["startingDeadlineSeconds"] > 0, name
        assert spec["successfulJobsHistoryLimit"] >= 1, name
        assert spec["failedJobsHistoryLimit"] >= 1, name
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0, name
        assert spec["jobTemplate"]["spec"]["backoffLimit"] >= 0, name


def test_frequent_tasks_end_before_their_next_run_is_due(manifests: Manifests) -> None:
    minutes = {"mee6-sync": 15, "forum-sync": 10, "reconcile": 5}
    jobs = cronjobs(manifests)
    for name, every in minutes.items():
        assert jobs[name]["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < every * 60


def test_a_task_can_be_turned_off_or_suspended(helm: Helm) -> None:
    manifests = helm.render(
        "tasks.jobs.forum-sync.enabled=false", "tasks.jobs.reconcile.suspend=true"
    )
    jobs = cronjobs(manifests)
    assert "forum-sync" not in jobs
    assert jobs["reconcile"]["spec"]["suspend"] is True
    assert jobs["mee6-sync"]["spec"]["suspend"] is False


def test_a_task_can_be_run_by_hand_from_its_cronjob_name(manifests: Manifests) -> None:
    # `kubectl create job --from=cronjob/<name>` (README) needs these names.
    names = {job["metadata"]["name"] for job in manifests.of_kind("CronJob")}
    assert names == {f"{RELEASE}-{job}" for job in SCHEDULES}
    assert all(len(name) <= 52 for name in names)


def test_each_schema_is_migrated_by_a_hook_job_before_install_and_upgrade(
    manifests: Manifests,
) -> None:
    jobs = {job["metadata"]["labels"]["wee5.io/schema"]: job for job in manifests.of_kind("Job")}
    assert set(jobs) == set(SERVICES)
    for service, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", f"wee5_{service}", "migrate"]
        # Only the database URL: the release's ConfigMaps do not exist before install.
        assert [env["name"] for env in container["env"]] == ["WEE5_DATABASE_URL"]
        assert "envFrom" not in container
        assert pod["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] >= 0
        assert job["spec"]["activeDeadlineSeconds"] > 0


def test_migration_jobs_bring_their_identity_and_network_access_as_earlier_hooks(
    manifests: Manifests,
) -> None:
    account = manifests.get("ServiceAccount", f"{RELEASE}-migrate")
    policy = manifests.get("NetworkPolicy", f"{RELEASE}-migrate")
    for hook in (account, policy):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    jobs = manifests.of_kind("Job")
    assert len(jobs) == len(SERVICES)
    for job in jobs:
        assert job["metadata"]["annotations"]["helm.sh/hook-weight"] == "0"
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-migrate"


def test_without_migration_jobs_each_service_migrates_its_schema_as_it_starts(
    helm: Helm,
) -> None:
    manifests = helm.render("migrations.enabled=false")
    assert manifests.of_kind("Job") == []
    accounts = {sa["metadata"]["name"] for sa in manifests.of_kind("ServiceAccount")}
    assert f"{RELEASE}-migrate" not in accounts
    for service in SERVICES:
        (container,) = manifests.deployment(service)["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["serve"]


def test_helm_test_asks_the_gateway_readyz_through_its_service(manifests: Manifests) -> None:
    pod = manifests.get("Pod", f"{RELEASE}-readiness-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    script = container["command"][-1]
    service = manifests.get("Service", f"{RELEASE}-gateway")
    port = service["spec"]["ports"][0]["port"]
    assert f'"http://{RELEASE}-gateway:{port}/readyz"' in script
    policy = manifests.get("NetworkPolicy", f"{RELEASE}-readiness-test")
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "test"
