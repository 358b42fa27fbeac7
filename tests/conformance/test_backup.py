"""Backups with the real software: the rendered CronJobs' exact scripts, commands and env
(only hosts, ports, directories and the credentials' values changed) against a real
PostgreSQL 15, a real Redis Cluster and an S3-compatible store on 127.0.0.1; then the
README's restore, which runs the restore scripts of the same ConfigMap in a pod made from
the CronJob's pod template, and a comparison of what came back with what went in.

PostgreSQL: a realistic dataset (unicode, NULLs, jsonb, bytea, a foreign key, sequences,
indexes) is dumped by backup-postgres.sh into a directory standing in for the backup
volume, restored by restore-postgres.sh into a fresh server (and with --clean over a
damaged copy in place), and compared table by table: row counts, an md5 over every row in
key order, sequence values, owners and indexes. Retention: older backups beyond
``backup.postgres.retention`` and a killed run's leftovers are removed.

destination s3: the init container dumps into the scratch volume, upload-s3.sh uploads it
with the AWS CLI v2 to moto's S3 server and prunes the bucket; the dump downloaded from
the bucket restores to the same fingerprint.

Redis: backup-redis.sh snapshots both masters of a two-master cluster with
``redis-cli --rdb``; restore-redis.sh imports the RDBs into a fresh three-master cluster;
every key is compared by type, value and TTL.

Figures (dump size and time, restore time, rows compared) are printed and appended to
$AI_INFRA_MEASUREMENTS when set.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.backups import SCRIPTS_DIR
from tests.conformance import backup_postgres as pg
from tests.conformance import backup_redis as rd
from tests.conformance import backup_s3 as s3
from tests.conformance import report
from tests.conftest import Objects, render_stack

pytestmark = pytest.mark.conformance

STACK = "dev"
# destination s3 as a user would set it; the test changes only the endpoint's address.
S3_SETTINGS = (
    "backup.destination=s3",
    "backup.s3.endpoint=https://s3.example.internal",
    "backup.s3.bucket=ai-infra-backups",
    "backup.s3.prefix=ai-infra/dev",
    "backup.s3.credentialsSecret=backup-s3",
)


def _record(system: str, **figures: Any) -> None:
    report.line(
        "Backup and restore figures", ", ".join(f"{key}={value}" for key, value in {"backup_of": system, **figures}.items())
    )
    report.measurement("backup", measurement=f"backup-{system}", backup_of=system, **figures)


# --- the rendered CronJobs, run as their pods would ---------------------------------------


class Pod:
    """One backup CronJob's pod as rendered: its containers, and the scripts of the
    ConfigMap written to a directory standing in for the mount at /etc/backup."""

    def __init__(self, workspace: Path, system: str, *overrides: str):
        objects = Objects(render_stack(STACK, *overrides).objects)
        self.objects = objects
        self.spec = objects.get("CronJob", f"ai-infra-backup-{system}")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        self.scripts = workspace / f"{system}-scripts{len(overrides)}"
        self.scripts.mkdir(parents=True)
        self.scripts.chmod(0o755)
        for name, content in objects.get("ConfigMap", "ai-infra-backup-scripts")["data"].items():
            (self.scripts / name).write_text(content)
            (self.scripts / name).chmod(0o555)  # the ConfigMap volume's defaultMode

    def container(self, index: int = 0, *, init: bool = False) -> dict[str, Any]:
        return self.spec["initContainers" if init else "containers"][index]

    def value(self, name: str, container: dict[str, Any] | None = None) -> str:
        return next(entry["value"] for entry in (container or self.container())["env"] if entry["name"] == name)

    def run(
        self,
        container: dict[str, Any],
        *,
        values: dict[str, str],
        secret_values: dict[str, str],
        path: str,
        command: list[str] | None = None,
        as_postgres: bool = False,
        stdin: Path | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        """Runs the container's command (or ``command``, a script of the ConfigMap as the
        README runs it with kubectl exec) with the container's env: ``values`` replace
        plain values (hosts, ports, directories), ``secret_values`` stand in for the
        Secret keys, ``extra`` sets what the README's command line sets. Every env name
        of the rendered container is set."""
        env = {"PATH": path, "LANG": "C.UTF-8", **(extra or {})}
        for entry in container["env"]:
            name = entry["name"]
            if "valueFrom" in entry:
                assert name in secret_values, f"{name} comes from a Secret; the test must stand in for it"
                env[name] = secret_values[name]
            else:
                env[name] = values.get(name, entry["value"])
        unknown = set(values) - {entry["name"] for entry in container["env"]}
        assert not unknown, f"the rendered container has no env {unknown}"
        argv = [part.replace(SCRIPTS_DIR, str(self.scripts)) for part in (command or container["command"])]
        user = pwd.getpwnam(pg.RUN_AS) if as_postgres else None
        started = time.monotonic()
        with stdin.open("rb") if stdin else open(os.devnull, "rb") as source:  # noqa: PTH123
            result = subprocess.run(
                argv,
                env=env,
                stdin=source,
                capture_output=True,
                timeout=120,
                check=False,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )
        seconds = time.monotonic() - started
        text = subprocess.CompletedProcess(argv, result.returncode, result.stdout.decode(), result.stderr.decode())
        for secret in secret_values.values():
            assert secret not in text.stdout + text.stderr, "a credential was printed"
        return text, seconds


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ai-infra-backup-"))
    root.chmod(0o755)  # the postgres user runs the servers and the scripts below it
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _earlier_backups(directory: Path, retention: int) -> list[str]:
    """What earlier runs left: retention + 1 complete backups, and a killed run's partial one."""
    old = [f"20200101T{hour:02d}0000Z" for hour in range(retention + 1)]
    pg.owned_directory(directory, 0o755)
    for name in [*old, "20200201T020000Z.partial"]:
        pg.owned_directory(directory / name, 0o755)
    return old


def _check_postgres_backup(backup: Path, database: str) -> Path:
    """The backup's files are there, checksummed, and the dump is a custom-format archive."""
    dump = backup / f"{database}.dump"
    assert sorted(p.name for p in backup.iterdir()) == sorted(["SHA256SUMS", f"{database}.dump", f"{database}.toc", "server.txt"])
    assert dump.read_bytes()[:5] == b"PGDMP"  # the custom format
    sums = subprocess.run(
        ["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=backup, capture_output=True, text=True, check=False
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert "in_recovery=false" in (backup / "server.txt").read_text()
    return dump


def _restore_script(name: str, *args: str) -> list[str]:
    """The README's `kubectl exec ai-infra-restore-<system> -- bash /etc/backup/<name> ...`."""
    return ["bash", f"{SCRIPTS_DIR}/{name}", *args]


# --- PostgreSQL ---------------------------------------------------------------------------


def test_postgres_backup_restores_every_row(workspace: Path) -> None:
    missing = pg.missing_software()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run {pg.INSTALL_SCRIPT}")
    pod = Pod(workspace, "postgres")
    backup = pod.container()  # destination pvc: one container does the backup
    database, retention = pod.value("PGDATABASE"), int(pod.value("BACKUP_RETENTION"))
    assert pod.value("PGUSER") == pg.SUPERUSER
    volume = pg.owned_directory(workspace / "pg-volume", 0o755)  # stands in for the PVC at /backup
    old = _earlier_backups(volume / "postgres", retention)
    password = secrets.token_hex(16)
    run: dict[str, Any] = {"secret_values": {"PGPASSWORD": password}, "path": f"{pg.PG_BIN}:/usr/bin:/bin", "as_postgres": True}

    with pg.servers(workspace / "servers", password, 2) as (source, target):
        source.psql(pg.BOOTSTRAP_SQL.format(app=database, database=database, password=secrets.token_hex(16)))
        source.psql(pg.DATASET_SQL.format(app=database), database=database)
        before = pg.fingerprint(source, database)

        paths = {"BACKUP_DIR": str(volume), "HOME": str(volume)}
        result, dump_seconds = pod.run(backup, values={"PGHOST": "127.0.0.1", "PGPORT": str(source.port), **paths}, **run)
        assert result.returncode == 0, f"backup-postgres.sh failed:\n{result.stderr}"
        kept = sorted(p.name for p in (volume / "postgres").iterdir())
        (new,) = [name for name in kept if name not in old]
        # The newest `retention` complete backups: the new one and the newest old ones.
        assert kept == sorted([*old[len(old) - (retention - 1) :], new]), f"retention {retention}: kept {kept}"
        dump = _check_postgres_backup(volume / "postgres" / new, database)

        # Into a fresh server, as into a new cluster after Patroni's bootstrap.
        target.psql(pg.BOOTSTRAP_SQL.format(app=database, database=database, password=secrets.token_hex(16)))
        restore = {"RESTORE_PGHOST": "127.0.0.1", "PGHOST": "192.0.2.1", **paths}  # PGHOST: the replica it dumped
        command = _restore_script("restore-postgres.sh", str(dump))  # /backup/postgres/<timestamp>/<database>.dump
        result, restore_seconds = pod.run(backup, values={**restore, "PGPORT": str(target.port)}, command=command, **run)
        assert result.returncode == 0, f"restore-postgres.sh failed:\n{result.stderr}"
        assert pg.fingerprint(target, database) == before
        # Once more without --clean: refused, the database is not empty.
        result, _ = pod.run(backup, values={**restore, "PGPORT": str(target.port)}, command=command, **run)
        assert result.returncode != 0 and "pass --clean" in result.stderr

        # In place over a damaged database (rows deleted, a table dropped, the sequence
        # moved), as after an application bug.
        source.psql(
            "DELETE FROM orders WHERE id % 3 = 0; UPDATE users SET email = NULL; DROP VIEW paid_orders; DROP TABLE events;"
            "SELECT setval('invoice_number_seq', 5);",
            database=database,
        )
        assert int(source.psql("SELECT count(*) FROM orders", database=database)) < before.tables["orders"][0]
        result, _ = pod.run(backup, values={**restore, "PGPORT": str(source.port)}, command=[*command, "--clean"], **run)
        assert result.returncode == 0, f"restore-postgres.sh --clean failed:\n{result.stderr}"
        assert pg.fingerprint(source, database) == before

    _record(
        "postgres",
        dump_bytes=dump.stat().st_size,
        dump_seconds=round(dump_seconds, 2),
        restore_seconds=round(restore_seconds, 2),
        tables=len(before.tables),
        rows=before.rows,
        sequences=len(before.sequences),
        retention=retention,
        backups_kept=len(kept),
    )


def _earlier_uploads(store: s3.Store, admin: Path, bucket: str, base: str, retention: int) -> list[str]:
    """The bucket as earlier runs left it (retention + 1 backups), and a prefix someone
    put there by hand, which the retention must leave alone."""
    store.aws(admin, "s3", "mb", f"s3://{bucket}")
    placeholder = admin / "placeholder"
    placeholder.write_text("an earlier backup")
    old = [f"20200101T{hour:02d}0000Z" for hour in range(retention + 1)]
    for name in [*old, "manual"]:
        store.aws(admin, "s3", "cp", str(placeholder), f"{base}{name}/placeholder")
    return old


def test_postgres_backup_to_s3_restores_every_row(workspace: Path) -> None:
    missing = pg.missing_software() + s3.missing_software()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run {pg.INSTALL_SCRIPT} and {s3.INSTALL_SCRIPT}")
    pod = Pod(workspace, "postgres", *S3_SETTINGS)
    dump_container, upload_container = pod.container(init=True), pod.container()
    database, retention = pod.value("PGDATABASE", dump_container), int(pod.value("BACKUP_RETENTION", upload_container))
    bucket = pod.value("S3_BUCKET", upload_container)
    base = f"s3://{bucket}/{pod.value('S3_PREFIX', upload_container)}/postgres/"
    scratch = pg.owned_directory(workspace / "s3-scratch", 0o755)  # the pod's emptyDir at /backup
    home = pg.owned_directory(workspace / "s3-home", 0o755)  # the pod's /tmp
    admin = pg.owned_directory(workspace / "s3-admin", 0o755)  # the operator's machine
    password, access_key, secret_key = secrets.token_hex(16), secrets.token_hex(10), secrets.token_hex(20)
    paths = {"BACKUP_DIR": str(scratch), "HOME": str(home)}

    with (
        pg.servers(workspace / "s3-servers", password, 2) as (source, target),
        s3.moto_server(workspace / "moto", access_key, secret_key) as store,
    ):
        source.psql(pg.BOOTSTRAP_SQL.format(app=database, database=database, password=secrets.token_hex(16)))
        source.psql(pg.DATASET_SQL.format(app=database), database=database)
        before = pg.fingerprint(source, database)
        old = _earlier_uploads(store, admin, bucket, base, retention)

        postgres: dict[str, Any] = {
            "secret_values": {"PGPASSWORD": password},
            "path": f"{pg.PG_BIN}:/usr/bin:/bin",
            "as_postgres": True,
        }
        result, _ = pod.run(dump_container, values={"PGHOST": "127.0.0.1", "PGPORT": str(source.port), **paths}, **postgres)
        assert result.returncode == 0, f"backup-postgres.sh failed:\n{result.stderr}"
        result, upload_seconds = pod.run(
            upload_container,
            values={"S3_ENDPOINT": store.endpoint, **paths},
            secret_values={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
            path="/usr/bin:/bin",
            as_postgres=True,  # the pod's user, which wrote the scratch volume
        )
        assert result.returncode == 0, f"upload-s3.sh failed:\n{result.stderr}"

        keys = store.keys(admin, base)
        prefixes = sorted({key.split("/")[0] for key in keys})
        (new,) = [name for name in prefixes if name not in [*old, "manual"]]
        assert prefixes == sorted([*old[len(old) - (retention - 1) :], new, "manual"]), f"retention {retention}: {prefixes}"
        assert sorted(key for key in keys if key.startswith(new)) == sorted(
            f"{new}/{name}" for name in ("SHA256SUMS", f"{database}.dump", f"{database}.toc", "server.txt")
        )

        # The README's restore from the bucket: download and verify on the operator's
        # machine, then stream the dump into restore-postgres.sh (`kubectl exec -i ... -`).
        download = admin / "download"
        store.aws(admin, "s3", "cp", "--recursive", f"{base}{new}/", str(download))
        dump = _check_postgres_backup(download, database)
        target.psql(pg.BOOTSTRAP_SQL.format(app=database, database=database, password=secrets.token_hex(16)))
        result, _ = pod.run(
            dump_container,
            values={"RESTORE_PGHOST": "127.0.0.1", "PGPORT": str(target.port), **paths},
            command=_restore_script("restore-postgres.sh", "-"),
            stdin=dump,
            **postgres,
        )
        assert result.returncode == 0, f"restore-postgres.sh - failed:\n{result.stderr}"
        assert pg.fingerprint(target, database) == before

    _record(
        "postgres-s3",
        dump_bytes=dump.stat().st_size,
        upload_seconds=round(upload_seconds, 2),
        rows=before.rows,
        retention=retention,
        backups_kept=len(prefixes) - 1,
    )


# --- Redis --------------------------------------------------------------------------------


def test_redis_snapshot_restores_every_key(workspace: Path) -> None:
    missing = rd.missing_software()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run {rd.INSTALL_SCRIPT}")
    pod = Pod(workspace, "redis")
    container, retention = pod.container(), int(pod.value("BACKUP_RETENTION"))
    conf = pod.objects.get("ConfigMap", "ai-infra-redis-cluster-config")["data"]["redis.conf"]
    volume = workspace / "redis-volume"
    volume.mkdir()
    password = secrets.token_hex(16)
    keys = 3000
    run: dict[str, Any] = {"secret_values": {"REDISCLI_AUTH": password}, "path": os.environ.get("PATH", "/usr/bin:/bin")}

    source = rd.Cluster(workspace / "redis-source", conf, password, masters=2)
    target = rd.Cluster(workspace / "redis-target", conf, password, masters=3)
    try:
        source.start()
        rd.load_dataset(source, keys)
        before = source.contents()
        assert len(before) == keys

        paths = {"BACKUP_DIR": str(volume), "HOME": str(volume)}
        seed = {"REDIS_SEED_HOST": "127.0.0.1", "REDIS_PORT": str(source.nodes[0][0]), **paths}
        result, snapshot_seconds = pod.run(container, values=seed, **run)
        assert result.returncode == 0, f"backup-redis.sh failed:\n{result.stderr}"
        (stamp,) = list((volume / "redis").iterdir())
        rdbs = sorted(stamp.glob("*.rdb"))
        assert len(rdbs) == 2, sorted(p.name for p in stamp.iterdir())
        assert (stamp / "cluster-nodes.txt").read_text().count("master") == 2

        # Into a fresh cluster of three masters: the import does not need the same shape.
        target.start()
        result, restore_seconds = pod.run(
            container,
            values={**seed, "REDIS_PORT": str(target.nodes[0][0])},
            command=_restore_script("restore-redis.sh", str(stamp)),
            extra={"RESTORE_PORT": str(rd.free_port())},  # the README leaves the default, 6390
            **run,
        )
        assert result.returncode == 0, f"restore-redis.sh failed:\n{result.stderr}"
        after = target.contents()
        assert after.keys() == before.keys(), f"{len(before.keys() - after.keys())} keys missing after the restore"
        assert after == before
    finally:
        source.stop()
        target.stop()

    _record(
        "redis",
        masters=len(rdbs),
        keys=keys,
        rdb_bytes=sum(p.stat().st_size for p in rdbs),
        snapshot_seconds=round(snapshot_seconds, 2),
        restore_seconds=round(restore_seconds, 2),
        retention=retention,
    )
