"""Settings of the scheduled backups: a logical ``pg_dump`` of the application database
and RDB snapshots of every Redis master, kept on a PersistentVolumeClaim or uploaded to
S3-compatible storage. Credentials are never config values: the database and Redis
passwords come from the components' Secrets, the S3 keys from an existing Secret named
here."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, Problem, Quantity, ResourceSettings, parse_quantity

# Five cron fields, each a number, range, list, step or `*` (names like MON are allowed).
_CRON_FIELD = re.compile(r"^(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# An S3 key prefix: path segments without leading/trailing slashes.
_S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")
# S3 bucket naming rules (the DNS-compatible subset every S3-compatible store accepts).
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def cron_problem(schedule: str) -> str | None:
    """Why ``schedule`` is not a Kubernetes CronJob schedule, or None when it is."""
    text = schedule.strip()
    if text in _CRON_MACROS:
        return None
    if "TZ=" in text:
        return "time zones go in backup.timeZone, not in the schedule (CronJob refuses TZ= in schedules)"
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(part) for part in fields):
        return (
            f"{schedule!r} is not a cron schedule; use five fields (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
        )
    return None


class S3Settings(ConfigModel):
    """Where backups go when ``backup.destination`` is ``s3``: any S3-compatible store
    (AWS S3, MinIO, Ceph RGW, ...), reached with the AWS CLI."""

    endpoint: str = Field(
        default="", description="S3 endpoint URL (https://minio.example:9000); empty: AWS S3 of backup.s3.region"
    )
    bucket: str = Field(default="", description="bucket the backups are written to (must exist); required with destination s3")
    prefix: str = Field(default="ai-infra-matrix", description="key prefix; objects are <prefix>/<system>/<timestamp>/<file>")
    region: str = Field(default="us-east-1", description="region (AWS_DEFAULT_REGION); most S3-compatible stores accept any")
    force_path_style: bool = Field(
        default=True, description="path-style addressing (endpoint/bucket/key), which MinIO and most on-premise stores need"
    )
    credentials_secret: str = Field(
        default="",
        description="name of an existing Secret in the namespace holding the access keys; required with destination s3",
    )
    access_key_id_key: str = Field(default="access-key-id", description="key of the access key ID in credentialsSecret")
    secret_access_key_key: str = Field(
        default="secret-access-key", description="key of the secret access key in credentialsSecret"
    )
    image: ImageSettings = Field(
        default=ImageSettings(repository="ai-infra-backup", tag="15-7.0.15"),
        description="image with the AWS CLI that uploads and prunes (images/backup; amazon/aws-cli:2.22.35 is compatible)",
    )

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        found = self.image.problems(f"{key}.image", production=production)
        if not self.bucket:
            found.append(
                Problem(
                    f"{key}.bucket", "destination is s3 but no bucket is set; pulumi config set --path backup.s3.bucket <name>"
                )
            )
        elif not _S3_BUCKET.match(self.bucket):
            found.append(
                Problem(f"{key}.bucket", f"{self.bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')")
            )
        if not self.credentials_secret:
            found.append(
                Problem(
                    f"{key}.credentialsSecret",
                    "destination is s3 but no credentials Secret is named; create one with kubectl create secret generic "
                    "<name> --from-literal=access-key-id=... --from-literal=secret-access-key=... and set "
                    "backup.s3.credentialsSecret to <name> (keys are never stack config values)",
                )
            )
        if self.prefix and not _S3_PREFIX.match(self.prefix):
            found.append(Problem(f"{key}.prefix", f"{self.prefix!r}: use path segments without leading, trailing or double '/'"))
        if self.endpoint and not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", self.endpoint):
            found.append(Problem(f"{key}.endpoint", f"{self.endpoint!r} is not an http(s) URL (e.g. https://minio.example:9000)"))
        if production and self.endpoint.startswith("http://"):
            found.append(
                Problem(
                    f"{key}.endpoint",
                    "prod sends backups over plain HTTP; use an https:// endpoint so dumps are encrypted in transit",
                )
            )
        return found


class PostgresBackupSettings(ConfigModel):
    enabled: bool = Field(default=True, description="back up the application database with pg_dump (needs patroni.enabled)")
    schedule: str = Field(default="0 2 * * *", description="cron schedule of the pg_dump CronJob (in backup.timeZone)")
    retention: int = Field(
        default=7, ge=1, le=1000, description="number of dumps kept; older ones are removed after each successful dump"
    )
    source: Literal["replica", "primary"] = Field(
        default="replica",
        description="which Service pg_dump reads from: replica (spares the primary; the primary when patroni.replicaCount is 1) "
        "or primary",
    )
    volume_size: Quantity = Field(
        default="20Gi",
        description="size of the backup PersistentVolumeClaim (destination pvc), or of the dump's scratch volume (s3)",
    )
    active_deadline_seconds: int = Field(default=3600, ge=60, description="a dump running longer than this is killed and fails")


class RedisBackupSettings(ConfigModel):
    enabled: bool = Field(default=True, description="snapshot every Redis master to an RDB file (needs redisCluster.enabled)")
    schedule: str = Field(default="30 2 * * *", description="cron schedule of the Redis snapshot CronJob (in backup.timeZone)")
    retention: int = Field(
        default=7, ge=1, le=1000, description="number of snapshots kept; older ones are removed after each success"
    )
    volume_size: Quantity = Field(
        default="10Gi",
        description="size of the backup PersistentVolumeClaim (destination pvc), or of the dump's scratch volume (s3)",
    )
    active_deadline_seconds: int = Field(default=1800, ge=60, description="a snapshot run longer than this is killed and fails")


class BackupSettings(ConfigModel):
    enabled: bool = Field(default=True, description="create the backup CronJobs (PostgreSQL dump, Redis snapshots)")
    destination: Literal["pvc", "s3"] = Field(
        default="pvc",
        description="pvc: a PersistentVolumeClaim per system (kept on pulumi destroy); s3: S3-compatible storage (backup.s3)",
    )
    storage_class: str = Field(default="", description="StorageClass of the backup volumes; empty: the top-level storageClass")
    time_zone: str = Field(default="Etc/UTC", description="IANA time zone the schedules are read in (CronJob timeZone)")
    starting_deadline_seconds: int = Field(
        default=3600, ge=10, description="a run that could not start within this many seconds of its time is skipped"
    )
    backoff_limit: int = Field(default=2, ge=0, le=10, description="retries of a failed backup run before the Job fails")
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100, description="finished Jobs kept for their logs")
    failed_jobs_history_limit: int = Field(default=5, ge=0, le=100, description="failed Jobs kept for their logs")
    resources: ResourceSettings = Field(
        default=ResourceSettings.model_validate(
            {
                # Log + /tmp (64Mi: HOME, the S3 client's cache). The dumps go to the claim, or
                # (destination s3) to a scratch volume of the plan's volumeSize, added to these.
                "requests": {"cpu": "100m", "memory": "128Mi", "ephemeralStorage": "64Mi"},
                "limits": {"cpu": "1", "memory": "512Mi", "ephemeralStorage": "256Mi"},
            }
        ),
        description="resources of every backup container",
    )
    postgres: PostgresBackupSettings = Field(default=PostgresBackupSettings(), description="the pg_dump CronJob")
    redis: RedisBackupSettings = Field(default=RedisBackupSettings(), description="the Redis snapshot CronJob")
    s3: S3Settings = Field(default=S3Settings(), description="S3-compatible destination (destination s3)")

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found = self.resources.problems(f"{key}.resources")
        for system in ("postgres", "redis"):
            job: PostgresBackupSettings | RedisBackupSettings = getattr(self, system)
            if not job.enabled:
                continue
            reason = cron_problem(job.schedule)
            if reason:
                found.append(Problem(f"{key}.{system}.schedule", reason))
            if parse_quantity(job.volume_size) <= 0:
                found.append(Problem(f"{key}.{system}.volumeSize", "the backup volume must be larger than 0 (e.g. 20Gi)"))
        if self.postgres.enabled and self.redis.enabled and self.postgres.schedule.strip() == self.redis.schedule.strip():
            found.append(
                Problem(
                    f"{key}.redis.schedule",
                    "runs at the same time as backup.postgres.schedule; stagger them (e.g. '30 2 * * *') so the two "
                    "backups do not compete for the network and the nodes",
                )
            )
        if not re.match(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", self.time_zone):
            found.append(
                Problem(f"{key}.timeZone", f"{self.time_zone!r} is not an IANA time zone name (e.g. Etc/UTC, Asia/Shanghai)")
            )
        if self.destination == "s3":
            found += self.s3.problems(f"{key}.s3", production=production)
        return found


__all__ = ["BackupSettings", "PostgresBackupSettings", "RedisBackupSettings", "S3Settings", "cron_problem"]
