"""The backup image runs every script of the backup CronJobs as rendered, as their uid,
on a read-only root: pg_dump of the dev database and its restore, the RDB snapshot of
the dev Redis node and its import, and the S3 upload with the image's AWS CLI against an
S3-compatible server on 127.0.0.1 (moto, tools/ci/install-backup.sh)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.images import pods
from tests.images.conftest import NAMESPACE_HOSTS, Service, built, pod_user, psql, wait_for
from tests.images.sandbox import Sandbox, describe
from tests.loopback import free_port

pytestmark = pytest.mark.images

S3 = (
    "backup.destination=s3",
    "backup.s3.endpoint=https://s3.example.internal",
    "backup.s3.bucket=ai-infra-backups",
    "backup.s3.prefix=ai-infra/dev",
    "backup.s3.credentialsSecret=backup-s3",
)
MOTO = Path(os.environ.get("AI_INFRA_MOTO_VENV", str(Path.home() / ".cache/ai-infra-matrix/moto-5.2.5"))) / "bin/moto_server"


def backup_sandbox(system: str, workdir: Path, hosts: Path, *overrides: str) -> Sandbox:
    pod = pods.pod_spec("CronJob", f"ai-infra-backup-{system}", *overrides)
    spec = pod["initContainers"][0] if overrides else pod["containers"][0]
    files = pods.config_files(pod, spec, workdir / f"backup-{system}{len(overrides)}", overrides=overrides)
    return Sandbox(
        built("ai-infra-backup"),
        writable=pods.writable_paths(pod, spec),
        binds={**files, "/etc/hosts": hosts},
        user=pod_user(pod),
    )


def backup_container(system: str, *overrides: str) -> dict[str, Any]:
    pod = pods.pod_spec("CronJob", f"ai-infra-backup-{system}", *overrides)
    return pod["initContainers"][0] if overrides else pod["containers"][0]


def postgres_env(postgres_server: Service, *overrides: str) -> dict[str, str]:
    spec = backup_container("postgres", *overrides)
    return pods.env(
        spec, pod_name="backup", secrets={"PGPASSWORD": postgres_server.password}, values={"PGPORT": str(postgres_server.port)}
    )


def test_postgres_dump_and_restore(postgres_server: Service, workdir: Path, hosts: Path):
    assert (
        pods.env(backup_container("postgres"), pod_name="x", secrets={"PGPASSWORD": ""})["PGHOST"] == NAMESPACE_HOSTS["patroni"]
    )
    seed = psql(
        postgres_server, "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'gpu-hours')"
    )
    assert seed.returncode == 0, describe(seed)
    spec = backup_container("postgres")
    env = postgres_env(postgres_server)
    with backup_sandbox("postgres", workdir, hosts) as sandbox:
        assert "15." in sandbox.run(["pg_dump", "--version"]).stdout
        dump = sandbox.run(spec["command"], env=env, timeout=300)
        assert dump.returncode == 0, describe(dump)
        backups = sorted((sandbox.volumes["/backup"] / "postgres").iterdir())
        assert len(backups) == 1 and (backups[0] / "ai_infra_db.dump").is_file() and (backups[0] / "SHA256SUMS").is_file()
        restore = sandbox.run(
            ["bash", "/etc/backup/restore-postgres.sh", f"/backup/postgres/{backups[0].name}/ai_infra_db.dump", "--clean"],
            env=env,
        )
        assert restore.returncode == 0, describe(restore)
    rows = psql(postgres_server, "SELECT item FROM orders")
    assert rows.stdout.strip() == "gpu-hours", describe(rows)


def test_redis_snapshot_and_import(redis_node: Service, workdir: Path, hosts: Path):
    cli = ["redis-cli", "-p", str(redis_node.port)]
    assert redis_node.sandbox.run([*cli, "set", "backup:key", "kept"], env=redis_node.env).stdout.strip() == "OK"
    spec = backup_container("redis")
    env = pods.env(
        spec, pod_name="backup", secrets={"REDISCLI_AUTH": redis_node.password}, values={"REDIS_PORT": str(redis_node.port)}
    )
    with backup_sandbox("redis", workdir, hosts) as sandbox:
        snapshot = sandbox.run(spec["command"], env=env, timeout=300)
        assert snapshot.returncode == 0, describe(snapshot)
        (backup,) = (sandbox.volumes["/backup"] / "redis").iterdir()
        assert len(list(backup.glob("*.rdb"))) == 1, "one RDB per master (dev: one)"
        assert redis_node.sandbox.run([*cli, "del", "backup:key"], env=redis_node.env).returncode == 0
        restore = sandbox.run(
            ["bash", "/etc/backup/restore-redis.sh", f"/backup/redis/{backup.name}"],
            env={**env, "RESTORE_PORT": str(free_port())},  # the temporary server's, on 127.0.0.1
            timeout=300,
        )
        assert restore.returncode == 0, describe(restore)
    assert redis_node.sandbox.run([*cli, "get", "backup:key"], env=redis_node.env).stdout.strip() == "kept"


@contextlib.contextmanager
def moto(workdir: Path) -> Iterator[str]:
    if not MOTO.exists():
        pytest.skip(f"moto_server is not installed ({MOTO}); run tools/ci/install-backup.sh")
    port = free_port()
    with (workdir / "moto.log").open("w") as log:
        process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    return True
            except OSError:
                return False

        wait_for("moto", up, 60, process)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_s3_upload_with_the_images_aws_cli(postgres_server: Service, workdir: Path, hosts: Path):
    pod = pods.pod_spec("CronJob", "ai-infra-backup-postgres", *S3)
    upload = pods.container(pod, "upload")
    assert upload["command"][:2] == ["sh", "/etc/backup/upload-s3.sh"]
    with moto(workdir) as endpoint, backup_sandbox("postgres", workdir, hosts, *S3) as sandbox:
        keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        env = pods.env(upload, pod_name="backup", secrets=keys, values={"S3_ENDPOINT": endpoint})
        assert "aws-cli/2.9.19" in sandbox.run(["aws", "--version"], env=env).stdout
        bucket = sandbox.run(["aws", "--endpoint-url", endpoint, "s3", "mb", "s3://ai-infra-backups"], env=env)
        assert bucket.returncode == 0, describe(bucket)
        dump = sandbox.run(backup_container("postgres", *S3)["command"], env=postgres_env(postgres_server, *S3), timeout=300)
        assert dump.returncode == 0, describe(dump)
        uploaded = sandbox.run(upload["command"], env=env, timeout=300)
        assert uploaded.returncode == 0, describe(uploaded)
        listing = sandbox.run(
            ["aws", "--endpoint-url", endpoint, "s3", "ls", "--recursive", "s3://ai-infra-backups/ai-infra/dev/postgres/"],
            env=env,
        )
    assert listing.returncode == 0, describe(listing)
    assert "ai_infra_db.dump" in listing.stdout and "SHA256SUMS" in listing.stdout, listing.stdout
