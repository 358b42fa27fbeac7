"""Backups: scheduled logical backups of PostgreSQL and RDB snapshots of Redis.

Two CronJobs, each running a script of components/files/backup/ from a ConfigMap:

- ``<release>-backup-postgres``: ``pg_dump --format=custom`` of the application database
  with the Patroni image (pg_dump of the server's major version), read from the replica
  Service when there are replicas (the primary stays free for writes), as the superuser
  whose password comes from the Patroni Secret as ``PGPASSWORD``;
- ``<release>-backup-redis``: ``redis-cli --rdb`` against every master of the cluster with
  the Redis image (``REDISCLI_AUTH`` from the Redis Secret): one RDB per master, streamed
  over the network because the nodes' ReadWriteOnce volumes cannot be read by another pod.

Destination ``pvc``: each CronJob writes into its own PersistentVolumeClaim, which Pulumi
keeps (``retainOnDelete``) when backups are disabled or the stack is destroyed: deleting
backups is never a side effect of a config change. Destination ``s3``: the backup is
written into a scratch volume by an init container and uploaded by an AWS CLI container,
with the keys from an existing Secret. Retention (a number of backups) is applied by the
same run, after the new backup is complete and verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from components import k8s as shapes
from components import kube_objects as kube
from components.postgres_ha import PostgresOutputs
from components.redis_cluster import RedisOutputs
from components.wiring import ClientImage, Pods
from settings.backup import BackupSettings

FILES = Path(__file__).parent / "files" / "backup"
SCRIPTS = ("common.sh", "backup-postgres.sh", "backup-redis.sh", "upload-s3.sh", "restore-postgres.sh", "restore-redis.sh")
SCRIPTS_DIR = "/etc/backup"
BACKUP_MOUNT = "/backup"


@dataclass(frozen=True)
class BackupsArgs:
    release: str
    namespace: str
    settings: BackupSettings
    postgres: PostgresOutputs | None = None  # None: PostgreSQL is not deployed, nothing to dump
    redis: RedisOutputs | None = None  # None: Redis is not deployed
    storage_class: str = ""  # the platform-wide default when backup.storageClass is empty
    image_pull_secrets: list[str] = field(default_factory=list)
    # What the claims wait for: the change lock of their storage class (components/change_locks.py).
    claims_lock: pulumi.Resource | None = None


@dataclass(frozen=True)
class BackupNames:
    """Every name the component derives from the release."""

    release: str

    @property
    def scripts(self) -> str:
        return f"{self.release}-backup-scripts"

    def cron_job(self, system: str) -> str:
        return f"{self.release}-backup-{system}"

    def claim(self, system: str) -> str:
        return f"{self.release}-backup-{system}"

    def pods(self, system: str) -> Pods:
        return Pods(f"backup-{system}", shapes.selector_labels(self.release, f"backup-{system}"))


@dataclass(frozen=True)
class _Plan:
    """What one system's backup runs: image, user, script and env."""

    system: str
    image: ClientImage
    env: list[shapes.Obj]
    schedule: str
    retention: int
    volume_size: str
    active_deadline_seconds: int


class Backups(pulumi.ComponentResource):
    """The backup CronJobs, their scripts and (destination pvc) their volumes."""

    files: dict[str, str]
    """The scripts in the ConfigMap, as rendered."""
    cron_jobs: dict[str, kube.CronJob]
    claims: dict[str, kube.PersistentVolumeClaim]
    pods: dict[str, Pods]
    """The pods of each backup that runs, by system ("postgres", "redis")."""

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:Backups", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        names = BackupNames(args.release)
        self.files = render_files()
        self.cron_jobs = {}
        self.claims = {}
        plans = _plans(args)
        self.pods = {plan.system: names.pods(plan.system) for plan in plans}

        config_map = None
        if plans:
            config_map = kube.ConfigMap(
                f"{name}-scripts",
                metadata=shapes.metadata(names.scripts, args.namespace, shapes.common_labels(args.release, "backup", "backup")),
                data=self.files,
                opts=child,
            )
        for plan in plans:
            labels = shapes.common_labels(args.release, f"backup-{plan.system}", "backup")
            depends: list[pulumi.Resource] = [config_map] if config_map else []
            if settings.destination == "pvc":
                claim = kube.PersistentVolumeClaim(
                    f"{name}-{plan.system}-claim",
                    # Not awaited: with a WaitForFirstConsumer class (local-path, most
                    # clouds' defaults) the provider (v4.25 awaiters.go) takes only Pending
                    # as ready, so the retained claim, Bound since its first backup, would
                    # time out every `pulumi up` that adopts it after a destroy.
                    metadata=shapes.metadata(names.claim(plan.system), args.namespace, labels, shapes.SKIP_AWAIT),
                    spec=shapes.claim_spec(plan.volume_size, settings.storage_class or args.storage_class),
                    # The backups outlive the config that made them: disabling backups,
                    # switching to s3 or destroying the stack leaves this volume in place.
                    opts=pulumi.ResourceOptions(
                        parent=self, retain_on_delete=True, depends_on=[args.claims_lock] if args.claims_lock else None
                    ),
                )
                self.claims[plan.system] = claim
                depends.append(claim)
            self.cron_jobs[plan.system] = kube.CronJob(
                f"{name}-{plan.system}",
                metadata=shapes.metadata(names.cron_job(plan.system), args.namespace, labels, _checkov_skips(plan)),
                spec=_cron_job_spec(args, names, plan, labels, self.files),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
        self.register_outputs({})


def render_files() -> dict[str, str]:
    """The ConfigMap's data: the scripts as they are (everything per-run is env)."""
    return {script: (FILES / script).read_text() for script in SCRIPTS}


# --- private builders ----------------------------------------------------------------


def _plans(args: BackupsArgs) -> list[_Plan]:
    settings = args.settings
    if not settings.enabled:
        return []
    plans: list[_Plan] = []
    if args.postgres is not None and settings.postgres.enabled:
        postgres = args.postgres
        # A replica when there is one: the dump's long read then runs beside the
        # primary's writes instead of on the same server.
        host = postgres.replica_host if settings.postgres.source == "replica" else postgres.primary_host
        plans.append(
            _Plan(
                system="postgres",
                image=postgres.client_image,
                env=[
                    shapes.env_value("PGHOST", host),
                    shapes.env_value("PGPORT", str(postgres.port)),
                    shapes.env_value("PGDATABASE", postgres.database),
                    shapes.env_value("PGUSER", postgres.superuser),
                    postgres.superuser_password.env("PGPASSWORD"),
                    shapes.env_value("PGSSLMODE", "prefer"),
                    # restore-postgres.sh writes to the primary whichever Service the dump reads.
                    shapes.env_value("RESTORE_PGHOST", postgres.primary_host),
                ],
                schedule=settings.postgres.schedule,
                retention=settings.postgres.retention,
                volume_size=settings.postgres.volume_size,
                active_deadline_seconds=settings.postgres.active_deadline_seconds,
            )
        )
    if args.redis is not None and settings.redis.enabled:
        redis = args.redis
        plans.append(
            _Plan(
                system="redis",
                image=redis.client_image,
                env=[
                    shapes.env_value("REDIS_SEED_HOST", redis.seed_host),
                    shapes.env_value("REDIS_PORT", str(redis.port)),
                    redis.password.env("REDISCLI_AUTH"),
                ],
                schedule=settings.redis.schedule,
                retention=settings.redis.retention,
                volume_size=settings.redis.volume_size,
                active_deadline_seconds=settings.redis.active_deadline_seconds,
            )
        )
    return plans


def _checkov_skips(plan: _Plan) -> dict[str, str]:
    """Why checkov's findings (and their kube-score twins) do not apply to a backup CronJob
    (see components/k8s.py)."""
    tool = {"postgres": "pg_dump reads PGPASSWORD", "redis": "redis-cli reads REDISCLI_AUTH (it has no password-file option)"}
    return shapes.scan_exceptions(
        {
            **shapes.PINNED_IMAGE_SKIPS,
            "CKV_K8S_35": (
                f"{tool.get(plan.system, 'the backup tool reads its password')} (and, for S3, the AWS CLI its keys) "
                "from the environment, each from a Secret, never the pod spec; a file would have to be written first"
            ),
            "CKV_K8S_40": (
                f"runs as uid {plan.image.uid}, the user of the {plan.system} image whose client it reuses, so the "
                "dump files belong to the same user as the data they come from"
            ),
        }
    )


def _scratch(args: BackupsArgs, plan: _Plan) -> str | None:
    """The dump's size on the node's disk: destination s3 writes it to an emptyDir of the
    plan's volumeSize (the claim's size with destination pvc) before the upload."""
    return plan.volume_size if args.settings.destination != "pvc" else None


def _backup_container(args: BackupsArgs, plan: _Plan, *, retention: int) -> shapes.Obj:
    return {
        "name": f"backup-{plan.system}",
        "image": plan.image.reference,
        "imagePullPolicy": plan.image.pull_policy,
        "command": ["bash", f"{SCRIPTS_DIR}/backup-{plan.system}.sh"],
        "env": [
            *plan.env,
            shapes.env_value("BACKUP_DIR", BACKUP_MOUNT),
            shapes.env_value("BACKUP_RETENTION", str(retention)),
            shapes.env_value("HOME", "/tmp"),
        ],
        "resources": shapes.container_resources(args.settings.resources, scratch=_scratch(args, plan)),
        "securityContext": shapes.container_security_context(),
        "volumeMounts": [
            {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True},
            {"name": "backup", "mountPath": BACKUP_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _upload_container(args: BackupsArgs, plan: _Plan) -> shapes.Obj:
    s3 = args.settings.s3
    return {
        "name": "upload",
        "image": s3.image.reference,
        "imagePullPolicy": s3.image.pull_policy,
        # The image's entrypoint is `aws`; the script calls it.
        "command": ["sh", f"{SCRIPTS_DIR}/upload-s3.sh", plan.system],
        "env": [
            shapes.env_from_secret("AWS_ACCESS_KEY_ID", s3.credentials_secret, s3.access_key_id_key),
            shapes.env_from_secret("AWS_SECRET_ACCESS_KEY", s3.credentials_secret, s3.secret_access_key_key),
            shapes.env_value("AWS_DEFAULT_REGION", s3.region),
            shapes.env_value("S3_ENDPOINT", s3.endpoint),
            shapes.env_value("S3_BUCKET", s3.bucket),
            shapes.env_value("S3_PREFIX", s3.prefix),
            shapes.env_value("S3_FORCE_PATH_STYLE", "true" if s3.force_path_style else "false"),
            shapes.env_value("BACKUP_DIR", BACKUP_MOUNT),
            shapes.env_value("BACKUP_RETENTION", str(plan.retention)),
            shapes.env_value("HOME", "/tmp"),
        ],
        # It only reads the dump (the backup container's, counted there).
        "resources": shapes.container_resources(args.settings.resources),
        # The same user as the backup container, which wrote the files it uploads.
        "securityContext": shapes.container_security_context(),
        "volumeMounts": [
            {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True},
            {"name": "backup", "mountPath": BACKUP_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _cron_job_spec(
    args: BackupsArgs, names: BackupNames, plan: _Plan, labels: dict[str, str], files: dict[str, str]
) -> shapes.Obj:
    settings = args.settings
    volumes: list[shapes.Obj] = [
        {"name": "scripts", "configMap": {"name": names.scripts, "defaultMode": 0o555}},
        # HOME: the clients' history and the S3 client's cache.
        shapes.scratch_volume("tmp", "64Mi"),
    ]
    if settings.destination == "pvc":
        volumes.append({"name": "backup", "persistentVolumeClaim": {"claimName": names.claim(plan.system)}})
        init_containers: list[shapes.Obj] = []
        containers = [_backup_container(args, plan, retention=plan.retention)]
    else:
        # Scratch space for this run only; the retention applies in the bucket.
        volumes.append(shapes.scratch_volume("backup", plan.volume_size))
        init_containers = [_backup_container(args, plan, retention=1)]
        containers = [_upload_container(args, plan)]
    pod: shapes.Obj = {
        # Never: a failed attempt's pod stays for `kubectl logs`; the Job retries with a new pod.
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": shapes.pod_security_context(run_as_user=plan.image.uid, fs_group=plan.image.uid),
        "containers": containers,
        "volumes": volumes,
    }
    if init_containers:
        pod["initContainers"] = init_containers
    pod |= shapes.image_pull_secrets(args.image_pull_secrets)
    return {
        "schedule": plan.schedule,
        "timeZone": settings.time_zone,
        # A backup still running when the next is due: skip the next, never run two.
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": settings.starting_deadline_seconds,
        "successfulJobsHistoryLimit": settings.successful_jobs_history_limit,
        "failedJobsHistoryLimit": settings.failed_jobs_history_limit,
        "suspend": False,
        "jobTemplate": {
            "metadata": {"labels": labels},
            "spec": {
                "backoffLimit": settings.backoff_limit,
                "activeDeadlineSeconds": plan.active_deadline_seconds,
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {shapes.CONFIG_CHECKSUM: shapes.checksum(*(files[key] for key in sorted(files)))},
                    },
                    "spec": pod,
                },
            },
        },
    }
