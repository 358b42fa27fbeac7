"""Data on the dev stack: a backup from each CronJob, `make destroy` keeping the volumes, and
docs/backup.md's restore bringing the data back into a fresh stack.

These change the deployment (destroy, a fresh PostgreSQL volume) and leave it deployed and
healthy again, so every other test of the tier passes before or after them."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.real.conftest import STACK, Deployed, stack_tool

PATRONI = "ai-infra-patroni-0"
DATABASE = "ai_infra_db"


def _psql(deployed: Deployed, sql: str) -> str:
    code, out = deployed.exec(PATRONI, f'psql -U postgres -d {DATABASE} -At -c "{sql}"')
    assert code == 0, out
    return out.strip()


def _database_claim(deployed: Deployed) -> str:
    """The PersistentVolumeClaim the PostgreSQL pod runs on, as the pod names it."""
    volumes = deployed.cluster.get("-n", deployed.namespace, "pod", PATRONI)["spec"]["volumes"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
    assert len(claims) == 1, f"{PATRONI} has {len(claims)} claims: {claims}"
    return claims[0]


def _wait_for(deployed: Deployed, what: str, probe: Any, timeout: float = 600) -> None:
    deployed.cluster.wait(what, probe, timeout=timeout, interval=3)


def _primary_accepts_writes(deployed: Deployed) -> bool:
    code, out = deployed.exec(PATRONI, f'psql -U postgres -d {DATABASE} -At -c "SELECT NOT pg_is_in_recovery()"')
    return code == 0 and out.strip() == "t"


def _backup(deployed: Deployed, system: str) -> str:
    job = f"manual-{system}-{uuid.uuid4().hex[:6]}"
    deployed.cluster.kubectl("-n", deployed.namespace, "create", "job", f"--from=cronjob/ai-infra-backup-{system}", job)

    def complete() -> bool:
        status = deployed.cluster.get("-n", deployed.namespace, "job", job)["status"]
        assert not status.get("failed"), f"backup Job {job} failed: {status}"
        return bool(status.get("succeeded"))

    _wait_for(deployed, f"backup Job {job}", complete, timeout=600)
    return job


def test_a_backup_job_from_each_cronjob_completes(deployed: Deployed) -> None:
    for system in ("postgres", "redis"):
        job = _backup(deployed, system)
        logs = deployed.cluster.kubectl("-n", deployed.namespace, "logs", f"job/{job}", "--all-containers")
        assert "ERROR" not in logs, logs[-2000:]


def test_destroy_keeps_the_volumes_and_a_new_up_finds_the_rows(deployed: Deployed) -> None:
    marker = uuid.uuid4().hex
    _psql(deployed, f"CREATE TABLE IF NOT EXISTS real_tier_probe (marker text); INSERT INTO real_tier_probe VALUES ('{marker}')")
    claim = _database_claim(deployed)
    stack_tool("destroy", STACK)
    try:
        claims = {c["metadata"]["name"] for c in deployed.cluster.get("-n", deployed.namespace, "pvc")["items"]}
        assert claim in claims, f"the destroy removed the database's volume {claim}: {sorted(claims)}"
        assert not deployed.cluster.get("-n", deployed.namespace, "statefulsets")["items"], "destroy left StatefulSets"
    finally:
        # deployed again whatever the checks found, so the tier's other tests still have a stack
        stack_tool("up", STACK)
    _wait_for(deployed, "the PostgreSQL primary", lambda: _primary_accepts_writes(deployed))
    assert marker in _psql(deployed, "SELECT marker FROM real_tier_probe"), "the new up did not find the row written before"


def _restore_pod(deployed: Deployed, system: str) -> str:
    """docs/backup.md's restore_pod: the backup CronJob's own pod template, sleeping."""
    cronjob = deployed.cluster.get("-n", deployed.namespace, "cronjob", f"ai-infra-backup-{system}")
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    spec = template["spec"]
    first = (spec.get("initContainers") or spec["containers"])[0]
    spec["containers"] = [{**first, "name": "restore", "command": ["sleep", "86400"]}]
    spec.pop("initContainers", None)
    spec["restartPolicy"] = "Never"
    name = f"ai-infra-restore-{system}"
    labels = template.get("metadata", {}).get("labels", {})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}
    deployed.cluster.kubectl("-n", deployed.namespace, "apply", "-f", "-", input_text=json.dumps(pod))
    deployed.cluster.kubectl(
        "-n", deployed.namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=300s", timeout=320
    )
    return name


def test_the_documented_restore_brings_the_data_back_into_a_fresh_stack(deployed: Deployed) -> None:
    marker = uuid.uuid4().hex
    _psql(deployed, f"CREATE TABLE IF NOT EXISTS restore_probe (marker text); INSERT INTO restore_probe VALUES ('{marker}')")
    _backup(deployed, "postgres")
    # a fresh stack: the same stack with an empty database volume (the backups' volume stays)
    claim = _database_claim(deployed)
    cluster_name = deployed.cluster.get("-n", deployed.namespace, "pod", PATRONI)["metadata"]["labels"]["cluster-name"]
    stack_tool("destroy", STACK)
    try:
        # docs/backup.md's new cluster in the same namespace: the volume and Patroni's own state
        deployed.cluster.kubectl("-n", deployed.namespace, "delete", "pvc", claim, "--wait=true", timeout=180)
        deployed.cluster.kubectl("-n", deployed.namespace, "delete", "configmap", "-l", f"cluster-name={cluster_name}")
    finally:
        stack_tool("up", STACK)
    _wait_for(deployed, "the fresh PostgreSQL primary", lambda: _primary_accepts_writes(deployed))
    assert "restore_probe" not in _psql(deployed, "SELECT tablename FROM pg_tables")
    pod = _restore_pod(deployed, "postgres")
    try:
        code, listing = deployed.exec(pod, "ls /backup/postgres")
        assert code == 0 and listing.split(), listing
        stamp = sorted(listing.split())[-1]
        # b) into a new cluster, where the database is still empty: no --clean
        code, out = deployed.exec(
            pod, f"bash /etc/backup/restore-postgres.sh /backup/postgres/{stamp}/{DATABASE}.dump", timeout=300
        )
        assert code == 0, out
    finally:
        deployed.cluster.kubectl("-n", deployed.namespace, "delete", "pod", pod, "--wait=false", check=False)
    assert marker in _psql(deployed, "SELECT marker FROM restore_probe")
