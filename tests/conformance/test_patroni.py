"""PostgresHA against real Patroni 4.1.5 and PostgreSQL 15 on 127.0.0.1 (etcd stands in
for the Kubernetes API as the DCS). Installs: tools/ci/install-postgres.sh.

Everything runs the program's rendered patroni.yml, post-bootstrap.sh and StatefulSet env;
only the DCS section and per-member addresses, ports and directories are changed
(tests/conformance/patroni_cluster.py). The failover drills write continuously with
synchronous commit while the leader is killed (SIGKILL of Patroni and PostgreSQL: node
loss) or stopped (SIGTERM to Patroni: a pod deletion), and measure the time until a new
leader accepts writes and the acknowledged rows missing on it. The baseline repeats the
SIGKILL drill with the operators' timing (ttl 30, loop_wait 10, retry_timeout 10, async).
"""

from __future__ import annotations

import functools
import json
import os
import re
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import patroni_cluster as pc
from tests.conformance import report
from tests.conftest import Objects, render_stack
from tests.loopback import wait_until

pytestmark = pytest.mark.conformance

RUNS = 3
BASELINE_DCS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "synchronous_mode": False}
FAILOVER_TIMEOUT = 120


@dataclass
class Drill:
    config: str  # "prod defaults" or "baseline"
    timing: str
    replication: str
    stop: str  # SIGKILL or SIGTERM
    run: int
    seconds_to_writable: float
    acked_rows: int
    acked_rows_lost: int
    old_leader: str
    new_leader: str


RESULTS: list[Drill] = []


@pytest.fixture(scope="module", autouse=True)
def _software() -> None:
    missing = pc.missing_software()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `bash {pc.INSTALL_SCRIPT}` (as root) first", pytrace=False)


@dataclass
class Rendered:
    files: dict[str, str]
    env: list[dict[str, Any]]
    secret: dict[str, str]
    namespace: str
    database: str
    app_user: str


def rendered(stack: str) -> Rendered:
    result = render_stack(stack)
    objects = Objects(result.objects)
    statefulset = objects.get("StatefulSet", "ai-infra-patroni")
    return Rendered(
        files=objects.get("ConfigMap", "ai-infra-patroni-files")["data"],
        env=statefulset["spec"]["template"]["spec"]["containers"][0]["env"],
        secret=objects.get("Secret", "ai-infra-patroni-credentials")["stringData"],
        namespace=result.settings.namespace,
        database=result.settings.patroni.postgresql.database,
        app_user=result.settings.patroni.postgresql.app_username,
    )


@pytest.fixture(scope="module")
def prod() -> Rendered:
    return rendered("prod")


@pytest.fixture(scope="module")
def prod_cluster(prod: Rendered) -> Iterator[pc.Cluster]:
    members = render_stack("prod").settings.patroni.replica_count
    with pc.running_cluster(prod.files, prod.env, prod.secret, members=members, namespace=prod.namespace) as cluster:
        yield cluster


def _record(drill: Drill) -> None:
    RESULTS.append(drill)
    path = os.environ.get("AI_INFRA_MEASUREMENTS")
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({"system": "patroni", "measurement": "failover", **asdict(drill)}) + "\n")


def _first_ack_elsewhere(writer: pc.Writer, since: float, old_port: int) -> tuple[float, int] | None:
    """(time, port) of the first write acknowledged after ``since`` by another server
    than the old leader: the new leader accepting writes."""
    return min(((t, port) for _, t, port in writer.acks() if t > since and port != old_port), default=None)


def _run_drills(cluster: pc.Cluster, app: Rendered, *, stop: str, config: str) -> list[Drill]:
    dcs = cluster.dcs
    timing = f"ttl {dcs['ttl']}, loop_wait {dcs['loop_wait']}, retry_timeout {dcs['retry_timeout']}"
    replication = "synchronous" if cluster.synchronous else "asynchronous"
    drills = []
    for run in range(1, RUNS + 1):
        leader = cluster.wait_healthy(180)
        out = cluster.workspace.path / f"writer-{config.replace(' ', '-')}-{stop}-{run}.log"
        writer = pc.Writer(cluster.app_dsn(database=app.database, user=app.app_user), app.secret["app-password"], out)
        old_port = leader.spec.pg_port
        try:
            writer.wait_for_acks(50)
            killed_at = time.monotonic()
            if stop == "SIGKILL":
                leader.kill_node()
            else:
                leader.terminate()

            try:
                after_kill = functools.partial(_first_ack_elsewhere, writer, killed_at, old_port)
                wait_until(after_kill, FAILOVER_TIMEOUT, "a new leader to accept writes", 0.1)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{cluster.diagnostics()}") from None
            count = len(writer.acks())
            writer.wait_for_acks(count + 20)
        finally:
            writer.stop()
        acks = writer.acks()
        first = _first_ack_elsewhere(writer, killed_at, old_port)
        assert first is not None, "no write was acknowledged by a new leader"
        first_t, new_port = first
        new_leader = next(m for m in cluster.members if m.spec.pg_port == new_port)
        present = set(
            cluster.psql(
                new_leader, "SELECT id FROM drill", database=app.database, user=app.app_user, password_key="app-password"
            ).split()
        )
        lost = sorted(ident for ident, _, _ in acks if str(ident) not in present)
        drill = Drill(
            config,
            timing,
            replication,
            stop,
            run,
            round(first_t - killed_at, 2),
            len(acks),
            len(lost),
            leader.name,
            new_leader.name,
        )
        _record(drill)
        drills.append(drill)
        leader.start()  # the pod comes back: it rejoins as a replica (pg_rewind if needed)
    cluster.wait_healthy(180)
    return drills


# --- the rendered file, as Patroni reads it ----------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_patroni_yml_passes_patroni_validate_config(stack: str, tmp_path: Any) -> None:
    app = rendered(stack)
    config = tmp_path / "patroni.yml"
    config.write_text(app.files["patroni.yml"])
    env = pc.resolve_env(app.env, pod_name="ai-infra-patroni-0", namespace=app.namespace, secret_data=app.secret)
    env = {key: value.replace("127.0.0.1", "10.42.0.7") for key, value in env.items()}  # a pod IP
    result = subprocess.run(
        [str(pc.VENV / "bin/patroni"), "--validate-config", "--ignore-listen-port", str(config)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"patroni --validate-config rejected the rendered file:\n{result.stdout}{result.stderr}"


# --- prod: three members -------------------------------------------------------------------


def test_prod_elects_one_leader_and_replicas_stream(prod_cluster: pc.Cluster, prod: Rendered) -> None:
    leader = prod_cluster.wait_healthy(180)
    rows = prod_cluster.psql(leader, "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1").split()
    replicas = [row.split("|") for row in rows]
    assert len(replicas) == len(prod_cluster.members) - 1
    assert all(state == "streaming" for _, state, _ in replicas), replicas
    assert [sync for _, _, sync in replicas].count("sync") == 1, replicas
    # The application user and database were created at bootstrap, and the user can write.
    assert (
        prod_cluster.psql(
            leader,
            "CREATE TABLE IF NOT EXISTS smoke (id int); INSERT INTO smoke VALUES (1); SELECT count(*) FROM smoke",
            database=prod.database,
            user=prod.app_user,
            password_key="app-password",
        ).strip()
        == "1"
    )


def test_patronictl_list_shows_the_guides_table(prod_cluster: pc.Cluster) -> None:
    leader = prod_cluster.wait_healthy(180)
    # As `kubectl exec ai-infra-patroni-0 -- patronictl list`: no -c, the config comes
    # from PATRONICTL_CONFIG_FILE in the member's env.
    member = prod_cluster.members[0]
    assert "PATRONICTL_CONFIG_FILE" in member.env
    result = subprocess.run(
        [str(pc.VENV / "bin/patronictl"), "list"],
        env={"PATH": "/usr/bin:/bin", **member.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Cluster: ai-infra-patroni" in lines[0], result.stdout
    header = [cell.strip() for cell in lines[1].strip("|").split("|")]
    assert header[:5] == ["Member", "Host", "Role", "State", "TL"], result.stdout
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[3:-1])}
    assert sorted(rows) == [f"ai-infra-patroni-{index}" for index in range(len(prod_cluster.members))], result.stdout
    assert rows[leader.name][2:4] == ["Leader", "running"], result.stdout
    others = [cells for name, cells in rows.items() if name != leader.name]
    assert all(cells[2] in ("Replica", "Sync Standby") and cells[3] == "streaming" for cells in others), result.stdout
    assert len({cells[4] for cells in rows.values()}) == 1, f"members on different timelines:\n{result.stdout}"
    print(result.stdout)


def test_probe_and_metrics_endpoints_answer_on_the_rest_api(prod_cluster: pc.Cluster) -> None:
    """The StatefulSet's probe paths and the guide's `:8008/metrics` exist in this Patroni."""
    leader = prod_cluster.wait_healthy(180)
    for member in prod_cluster.members:
        for path in ("/readiness", "/liveness"):
            with urllib.request.urlopen(f"http://127.0.0.1:{member.spec.api_port}{path}", timeout=5) as response:
                assert response.status == 200, (member.name, path)
    with urllib.request.urlopen(f"http://127.0.0.1:{leader.spec.api_port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert re.search(r'^patroni_primary\{scope="ai-infra-patroni",name="ai-infra-patroni-\d"\} 1$', metrics, re.M), metrics[:2000]


def test_sigkill_of_the_leader_fails_over_without_losing_acknowledged_rows(prod_cluster: pc.Cluster, prod: Rendered) -> None:
    drills = _run_drills(prod_cluster, prod, stop="SIGKILL", config="prod defaults")
    assert [d.acked_rows_lost for d in drills] == [0] * RUNS, drills
    assert all(d.seconds_to_writable <= prod_cluster.dcs["ttl"] + 2 * prod_cluster.dcs["loop_wait"] for d in drills), drills


def test_sigterm_of_the_leader_hands_over_quickly_without_losing_rows(prod_cluster: pc.Cluster, prod: Rendered) -> None:
    drills = _run_drills(prod_cluster, prod, stop="SIGTERM", config="prod defaults")
    assert [d.acked_rows_lost for d in drills] == [0] * RUNS, drills
    assert all(d.seconds_to_writable < prod_cluster.dcs["ttl"] for d in drills), drills


def test_baseline_sigkill_with_the_operators_timing(prod: Rendered) -> None:
    """Zalando's and Crunchy's defaults (ttl 30, loop_wait 10, retry_timeout 10, async)
    on the same rendered file: the figure the program's defaults are compared with."""
    with pc.running_cluster(
        prod.files, prod.env, prod.secret, members=3, namespace=prod.namespace, dcs_overrides=BASELINE_DCS
    ) as cluster:
        drills = _run_drills(cluster, prod, stop="SIGKILL", config="baseline")
    assert len(drills) == RUNS


@report.summary
def _failover_summary() -> list[str]:
    """The drills' table for the summary: medians, and the program's SIGKILL median
    against the baseline's."""
    if not RESULTS:
        return []
    groups: dict[tuple[str, str], list[Drill]] = {}
    for drill in RESULTS:
        groups.setdefault((drill.config, drill.stop), []).append(drill)
    lines = [
        "",
        "Patroni failover drills (3 members on 127.0.0.1, etcd as DCS, writer with synchronous_commit=on)",
        f"{'config':<14} {'timing':<38} {'replication':<12} {'stop':<8} {'runs (s)':<22} {'median':>7} {'acked lost':>11}",
    ]
    medians: dict[tuple[str, str], float] = {}
    for (config, stop), drills in groups.items():
        times = [d.seconds_to_writable for d in drills]
        medians[(config, stop)] = statistics.median(times)
        lost = "/".join(str(d.acked_rows_lost) for d in drills)
        lines.append(
            f"{config:<14} {drills[0].timing:<38} {drills[0].replication:<12} {stop:<8} "
            f"{', '.join(f'{t:.2f}' for t in times):<22} {medians[(config, stop)]:>7.2f} {lost:>11}"
        )
    ours, baseline = medians.get(("prod defaults", "SIGKILL")), medians.get(("baseline", "SIGKILL"))
    if ours and baseline:
        lines.append(f"SIGKILL median: prod defaults {ours:.2f} s vs baseline {baseline:.2f} s, ratio {ours / baseline:.2f}")
        report.measurement(
            "patroni",
            measurement="failover_ratio",
            prod_sigkill_median=ours,
            baseline_sigkill_median=baseline,
            ratio=round(ours / baseline, 3),
        )
    return lines


# --- dev: one member ---------------------------------------------------------------------


def test_dev_single_member_starts_and_accepts_writes() -> None:
    dev = rendered("dev")
    with pc.running_cluster(dev.files, dev.env, dev.secret, members=1, namespace=dev.namespace) as cluster:
        leader = cluster.wait_healthy(120)
        assert leader.name == "ai-infra-patroni-0"
        count = cluster.psql(
            leader,
            "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100); "
            "SELECT count(*) FROM items",
            database=dev.database,
            user=dev.app_user,
            password_key="app-password",
        )
        assert count.strip() == "100"
