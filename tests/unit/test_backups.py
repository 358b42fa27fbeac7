"""Backups under mocks: the CronJobs' schedule, retention, source and destination follow
the settings for dev and prod; credentials only ever come from Secrets; every CronJob is
safe to leave running (no overlap, bounded, restricted); backups can be turned off; and
bad backup config is refused naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.backups import FILES, SCRIPTS, SCRIPTS_DIR, render_files
from settings import SettingsError, load_settings
from settings.stack_file import stack_config
from tests.conftest import env, objects

SYSTEMS = ("postgres", "redis")
S3 = (
    "backup.destination=s3",
    "backup.s3.endpoint=https://minio.example:9000",
    "backup.s3.bucket=platform-backups",
    "backup.s3.prefix=ai-infra/prod",
    "backup.s3.region=cn-north-1",
    "backup.s3.credentialsSecret=backup-s3",
)


def _pod(cron_job: dict[str, Any]) -> dict[str, Any]:
    return cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _containers(cron_job: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(cron_job)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _backup_container(cron_job: dict[str, Any], system: str) -> dict[str, Any]:
    (container,) = [c for c in _containers(cron_job) if c["name"] == f"backup-{system}"]
    return container


def _problems(stack: str, *overrides: str) -> dict[str, str]:
    raw, secret_keys = stack_config(stack, overrides)
    with pytest.raises(SettingsError) as caught:
        load_settings(raw, stack=stack, secret_keys=secret_keys)
    return {problem.key: problem.message for problem in caught.value.problems}


# --- what runs, when, and how many are kept ---------------------------------------------


@pytest.mark.parametrize(("stack", "retention"), [("dev", "7"), ("prod", "14")])
def test_schedules_and_retention_are_the_profile_defaults(stack: str, retention: str) -> None:
    rendered = objects(stack)
    assert sorted(rendered.names("CronJob")) == ["ai-infra-backup-postgres", "ai-infra-backup-redis"]
    schedules = {system: rendered.get("CronJob", f"ai-infra-backup-{system}")["spec"]["schedule"] for system in SYSTEMS}
    assert schedules == {"postgres": "0 2 * * *", "redis": "30 2 * * *"}
    for system in SYSTEMS:
        cron_job = rendered.get("CronJob", f"ai-infra-backup-{system}")
        assert cron_job["spec"]["timeZone"] == "Etc/UTC"
        assert env(_backup_container(cron_job, system))["BACKUP_RETENTION"] == retention


def test_schedule_and_retention_follow_the_settings(stack: str) -> None:
    rendered = objects(
        stack,
        "backup.postgres.schedule=15 3 * * 0",
        "backup.postgres.retention=30",
        "backup.redis.schedule='@hourly'",
        "backup.redis.retention=48",
        "backup.timeZone=Asia/Shanghai",
    )
    postgres = rendered.get("CronJob", "ai-infra-backup-postgres")
    redis = rendered.get("CronJob", "ai-infra-backup-redis")
    assert (postgres["spec"]["schedule"], redis["spec"]["schedule"]) == ("15 3 * * 0", "@hourly")
    assert postgres["spec"]["timeZone"] == redis["spec"]["timeZone"] == "Asia/Shanghai"
    assert env(_backup_container(postgres, "postgres"))["BACKUP_RETENTION"] == "30"
    assert env(_backup_container(redis, "redis"))["BACKUP_RETENTION"] == "48"


def test_pg_dump_reads_a_replica_in_prod_and_the_primary_in_dev() -> None:
    def host(stack: str, *overrides: str) -> str:
        cron_job = objects(stack, *overrides).get("CronJob", "ai-infra-backup-postgres")
        return env(_backup_container(cron_job, "postgres"))["PGHOST"]

    assert host("prod") == "ai-infra-patroni-replica.ai-infra-prod.svc.cluster.local"
    assert host("dev") == "ai-infra-patroni.ai-infra.svc.cluster.local"  # one member: no replica to read
    assert host("prod", "backup.postgres.source=primary") == "ai-infra-patroni.ai-infra-prod.svc.cluster.local"
    # restore-postgres.sh writes to the primary, whichever Service the dump reads.
    cron_job = objects("prod").get("CronJob", "ai-infra-backup-postgres")
    assert env(_backup_container(cron_job, "postgres"))["RESTORE_PGHOST"] == "ai-infra-patroni.ai-infra-prod.svc.cluster.local"
    # The Services named are the ones PostgresHA renders.
    for stack in ("dev", "prod"):
        service = host(stack).split(".")[0]
        assert objects(stack).find("Service", service) is not None


def test_each_job_runs_the_image_and_user_of_the_system_it_backs_up(stack: str) -> None:
    rendered = objects(stack)
    for system, statefulset in (("postgres", "ai-infra-patroni"), ("redis", "ai-infra-redis-cluster")):
        cron_job = rendered.get("CronJob", f"ai-infra-backup-{system}")
        server_pod = rendered.get("StatefulSet", statefulset)["spec"]["template"]["spec"]
        container = _backup_container(cron_job, system)
        assert container["image"] == server_pod["containers"][0]["image"]  # pg_dump 15 for PostgreSQL 15
        assert _pod(cron_job)["securityContext"]["runAsUser"] == server_pod["securityContext"]["runAsUser"]
        assert container["command"] == ["bash", f"{SCRIPTS_DIR}/backup-{system}.sh"]


def test_the_scripts_configmap_holds_the_files_the_commands_run(stack: str) -> None:
    rendered = objects(stack)
    data = rendered.get("ConfigMap", "ai-infra-backup-scripts")["data"]
    assert data == render_files() == {name: (FILES / name).read_text() for name in SCRIPTS}
    assert sorted(SCRIPTS) == sorted(path.name for path in Path(FILES).iterdir())
    for cron_job in rendered.of_kind("CronJob"):
        for container in _containers(cron_job):
            script = container["command"][1].removeprefix(f"{SCRIPTS_DIR}/")
            assert script in data


# --- destination ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "sizes"), [("dev", {"postgres": "20Gi", "redis": "10Gi"}), ("prod", {"postgres": "100Gi", "redis": "20Gi"})]
)
def test_pvc_destination_gives_each_system_its_own_volume(stack: str, sizes: dict[str, str]) -> None:
    rendered = objects(stack)
    for system in SYSTEMS:
        claim = rendered.get("PersistentVolumeClaim", f"ai-infra-backup-{system}")
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claim["spec"]["resources"]["requests"]["storage"] == sizes[system]
        pod = _pod(rendered.get("CronJob", f"ai-infra-backup-{system}"))
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["backup"] == {"name": "backup", "persistentVolumeClaim": {"claimName": f"ai-infra-backup-{system}"}}
        assert "initContainers" not in pod
        assert (
            env(_backup_container({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}, system))["BACKUP_DIR"]
            == "/backup"
        )


def test_backup_volumes_use_the_backup_storage_class_then_the_platform_one() -> None:
    claim = objects("prod", "storageClass=fast").get("PersistentVolumeClaim", "ai-infra-backup-postgres")
    assert claim["spec"]["storageClassName"] == "fast"
    claim = objects("prod", "storageClass=fast", "backup.storageClass=cold").get(
        "PersistentVolumeClaim", "ai-infra-backup-postgres"
    )
    assert claim["spec"]["storageClassName"] == "cold"


def test_s3_destination_uploads_with_keys_from_the_named_secret(stack: str) -> None:
    rendered = objects(stack, *S3)
    assert rendered.of_kind("PersistentVolumeClaim") == [] or all(
        not claim["metadata"]["name"].startswith("ai-infra-backup-") for claim in rendered.of_kind("PersistentVolumeClaim")
    )
    for system in SYSTEMS:
        cron_job = rendered.get("CronJob", f"ai-infra-backup-{system}")
        pod = _pod(cron_job)
        (dump,) = pod["initContainers"]
        (upload,) = pod["containers"]
        assert dump["name"] == f"backup-{system}"
        # The dump waits for its upload on the node's disk: a scratch volume of the plan's
        # volumeSize, counted in the dumping container's ephemeral storage.
        size = {"prod": {"postgres": "100Gi", "redis": "20Gi"}, "dev": {"postgres": "20Gi", "redis": "10Gi"}}[stack][system]
        assert {volume["name"]: volume for volume in pod["volumes"]}["backup"] == {
            "name": "backup",
            "emptyDir": {"sizeLimit": size},
        }
        assert (
            dump["resources"]["limits"]["ephemeral-storage"] == {"100Gi": "102656Mi", "20Gi": "20736Mi", "10Gi": "10496Mi"}[size]
        )
        assert upload["resources"]["limits"]["ephemeral-storage"] == "256Mi"
        assert upload["image"] == "ai-infra-backup:15-7.0.15"
        assert upload["command"] == ["sh", f"{SCRIPTS_DIR}/upload-s3.sh", system]
        variables = env(upload)
        assert variables["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "backup-s3", "key": "access-key-id"}}
        assert variables["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "backup-s3", "key": "secret-access-key"}}
        assert (variables["S3_ENDPOINT"], variables["S3_BUCKET"], variables["S3_PREFIX"], variables["AWS_DEFAULT_REGION"]) == (
            "https://minio.example:9000",
            "platform-backups",
            "ai-infra/prod",
            "cn-north-1",
        )
        # The retention applies in the bucket; the scratch volume holds this run only.
        assert variables["BACKUP_RETENTION"] == ("14" if stack == "prod" else "7")
        assert env(dump)["BACKUP_RETENTION"] == "1"
        assert {mount["name"]: mount.get("readOnly", False) for mount in upload["volumeMounts"]}["backup"] is True


def test_s3_secret_keys_are_configurable() -> None:
    rendered = objects("prod", *S3, "backup.s3.accessKeyIdKey=AWS_ACCESS_KEY_ID", "backup.s3.secretAccessKeyKey=AWS_SECRET")
    variables = env(_pod(rendered.get("CronJob", "ai-infra-backup-postgres"))["containers"][0])
    assert variables["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["key"] == "AWS_ACCESS_KEY_ID"
    assert variables["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["key"] == "AWS_SECRET"


# --- credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [(), S3], ids=["pvc", "s3"])
def test_no_password_in_commands_or_env_literals(stack: str, overrides: tuple[str, ...]) -> None:
    rendered = objects(stack, *overrides)
    secret_names = set(rendered.names("Secret"))
    secret_values = {
        value
        for secret in rendered.of_kind("Secret")
        for value in (secret.get("stringData") or secret.get("data") or {}).values()
        if isinstance(value, str) and len(value) >= 8
    }
    for cron_job in rendered.of_kind("CronJob"):
        for container in _containers(cron_job):
            command = " ".join(container["command"])
            assert " -a " not in f" {command} " and "--password" not in command and "PASSWORD=" not in command
            for entry in container["env"]:
                name = entry["name"]
                sensitive = any(word in name for word in ("PASSWORD", "AUTH", "SECRET", "ACCESS_KEY"))
                if sensitive:
                    assert "value" not in entry, f"{cron_job['metadata']['name']}: {name} is a literal"
                    ref = entry["valueFrom"]["secretKeyRef"]
                    # A Secret this program renders, or the one the user named for S3.
                    assert ref["name"] in secret_names or ref["name"] == "backup-s3", ref
                else:
                    assert entry.get("value") not in secret_values, name
    scripts = rendered.get("ConfigMap", "ai-infra-backup-scripts")["data"]
    assert not any(value in text for value in secret_values for text in scripts.values())


def test_the_secret_keys_read_exist_in_the_secrets_rendered(stack: str) -> None:
    rendered = objects(stack)
    for cron_job in rendered.of_kind("CronJob"):
        for container in _containers(cron_job):
            for entry in container["env"]:
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = rendered.get("Secret", ref["name"])
                    assert ref["key"] in (secret.get("stringData") or secret.get("data") or {}), ref


# --- safety -----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [(), S3], ids=["pvc", "s3"])
def test_cron_jobs_never_overlap_and_are_bounded_and_restricted(stack: str, overrides: tuple[str, ...]) -> None:
    for cron_job in objects(stack, *overrides).of_kind("CronJob"):
        spec = cron_job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] == 3600
        assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 5
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] == 2
        assert job["activeDeadlineSeconds"] == (3600 if cron_job["metadata"]["name"].endswith("postgres") else 1800)
        pod = job["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["tmp"] == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
        for container in _containers(cron_job):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}
            assert env(container)["HOME"] == "/tmp"
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]


def test_safety_fields_follow_the_settings() -> None:
    rendered = objects(
        "prod",
        "backup.startingDeadlineSeconds=600",
        "backup.backoffLimit=0",
        "backup.successfulJobsHistoryLimit=1",
        "backup.failedJobsHistoryLimit=2",
        "backup.postgres.activeDeadlineSeconds=7200",
    )
    spec = rendered.get("CronJob", "ai-infra-backup-postgres")["spec"]
    assert (spec["startingDeadlineSeconds"], spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (600, 1, 2)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 7200


def test_a_script_change_shows_in_the_pod_template() -> None:
    cron_job = objects("dev").get("CronJob", "ai-infra-backup-postgres")
    annotations = cron_job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["ai-infra-matrix/config-checksum"]


# --- turning backups off ------------------------------------------------------------------


def test_backups_can_be_disabled(stack: str) -> None:
    rendered = objects(stack, "backup.enabled=false")
    assert rendered.names("CronJob") == []
    assert rendered.find("ConfigMap", "ai-infra-backup-scripts") is None
    assert not [name for name in rendered.names("PersistentVolumeClaim") if name.startswith("ai-infra-backup-")]


def test_each_system_can_be_disabled_alone(stack: str) -> None:
    assert objects(stack, "backup.redis.enabled=false").names("CronJob") == ["ai-infra-backup-postgres"]
    assert objects(stack, "backup.postgres.enabled=false").names("CronJob") == ["ai-infra-backup-redis"]


def test_no_backup_of_a_system_that_is_not_deployed(stack: str) -> None:
    assert objects(stack, "patroni.enabled=false").names("CronJob") == ["ai-infra-backup-redis"]
    assert objects(stack, "redisCluster.enabled=false").names("CronJob") == ["ai-infra-backup-postgres"]


# --- bad config -------------------------------------------------------------------------


def test_s3_without_bucket_or_credentials_is_refused() -> None:
    problems = _problems("prod", "backup.destination=s3")
    assert "backup.s3.bucket" in problems
    assert "backup.s3.credentialsSecret" in problems
    assert "kubectl create secret generic" in problems["backup.s3.credentialsSecret"]


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (("backup.postgres.schedule=every night",), "backup.postgres.schedule", "five fields"),
        (("backup.redis.schedule=CRON_TZ=UTC 0 2 * * *",), "backup.redis.schedule", "backup.timeZone"),
        (("backup.redis.schedule=0 2 * * *",), "backup.redis.schedule", "stagger"),
        (("backup.timeZone=not a zone",), "backup.timeZone", "IANA"),
        ((*S3, "backup.s3.endpoint=http://minio:9000"), "backup.s3.endpoint", "https"),
        ((*S3, "backup.s3.bucket=Bad_Bucket"), "backup.s3.bucket", "bucket name"),
        ((*S3, "backup.s3.prefix=/leading"), "backup.s3.prefix", "segments"),
        ((*S3, "backup.s3.image.tag=latest"), "backup.s3.image.tag", "pin a version"),
        (("backup.resources.requests.memory=1Gi",), "backup.resources.requests.memory", "larger than limit"),
    ],
)
def test_bad_backup_config_is_refused_naming_the_key(overrides: tuple[str, ...], key: str, fragment: str) -> None:
    problems = _problems("prod", *overrides)
    assert key in problems, problems
    assert fragment in problems[key]


def test_disabled_backups_are_not_checked() -> None:
    raw, secret_keys = stack_config("prod", ("backup.enabled=false", "backup.destination=s3"))
    assert load_settings(raw, stack="prod", secret_keys=secret_keys).backup.enabled is False


def test_retention_must_keep_at_least_one() -> None:
    raw, secret_keys = stack_config("prod", ("backup.postgres.retention=0",))
    with pytest.raises(SettingsError) as caught:
        load_settings(raw, stack="prod", secret_keys=secret_keys)
    assert any(problem.key.startswith("backup.postgres.retention") for problem in caught.value.problems)
