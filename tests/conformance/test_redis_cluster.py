"""Conformance of RedisCluster with real redis-server (Debian's) on loopback.

The rendered redis.conf and scripts (the ConfigMap's data) run as they are, except for
each node's bind address, data directory and port. Nodes get addresses 127.0.0.1<n>
(ordinal n), and 127.0.0.2<n> after the full-restart drill, as pods get new IPs.

Figures (failover after SIGKILL, write gap of a planned master restart, slot spread,
keys lost) are printed in a table at the end and appended to $AI_INFRA_MEASUREMENTS.
"""

from __future__ import annotations

import secrets
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import report
from tests.conformance.redis_cluster_drills import restart_master, sigkill_master
from tests.conformance.redis_cluster_nodes import (
    SLOTS,
    LocalCluster,
    record,
    require_binaries,
)
from tests.conftest import Objects, render_stack
from tests.loopback import wait_until

pytestmark = pytest.mark.conformance

CONFIG_MAP = "ai-infra-redis-cluster-config"
RUNS = 3
RESTART_DELAY = 5.0  # seconds a rolled pod takes to come back, in the restart drills
RESULTS: dict[str, Any] = {}


def rendered_files(stack: str, *overrides: str) -> dict[str, str]:
    return Objects(render_stack(stack, *overrides).objects).get("ConfigMap", CONFIG_MAP)["data"]


def make_cluster(tmp: Path, stack: str, template: str, *overrides: str, alternate: str = "") -> LocalCluster:
    require_binaries()
    return LocalCluster(
        files=rendered_files(stack, *overrides),
        workdir=tmp,
        password=secrets.token_hex(16),
        template=template,
        alternate_template=alternate,
    )


def job_ok(cluster: LocalCluster, mode: str, masters: int, replicas: int, **kwargs: Any) -> str:
    result = cluster.job(mode, masters, replicas, **kwargs)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"cluster-{mode}.sh failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = make_cluster(tmp_path_factory.mktemp("redis-prod"), "prod", "127.0.0.1%d", alternate="127.0.0.2%d")
    try:
        cluster.start(range(6))
        yield cluster
    finally:
        cluster.stop_all()


def roles(cluster: LocalCluster) -> tuple[list[Any], list[Any]]:
    view = cluster.view().values()
    masters = [n for n in view if n.is_master and n.slot_count > 0]
    replicas = [n for n in view if not n.is_master]
    return masters, replicas


# --- dev: one node owning every slot --------------------------------------------------


def test_dev_single_node_takes_all_slots_and_serves_a_cluster_client(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, "dev", "127.0.0.4%d")
    try:
        cluster.start([0])
        node = cluster.node(0)
        assert cluster.probe(node, "probe-liveness.sh").returncode == 0
        latch = tmp_path / "ready-latch"
        assert cluster.probe(node, "probe-readiness.sh", REDIS_READY_LATCH=str(latch)).returncode == 1, (
            "a node outside a healthy cluster must not be ready"
        )
        job_ok(cluster, "reconcile", 1, 0)
        info = node.client().execute_command("CLUSTER INFO")
        assert "cluster_state:ok" in info and f"cluster_slots_assigned:{SLOTS}" in info
        before = cluster.snapshot()
        output = job_ok(cluster, "reconcile", 1, 0)
        assert cluster.snapshot() == before, f"re-running the Job changed the cluster:\n{output}"
        assert "takes all" not in output
        assert cluster.probe(node, "probe-readiness.sh", REDIS_READY_LATCH=str(latch)).returncode == 0
        client = cluster.cluster_client()
        try:
            for n in range(200):
                client.set(f"dev:{n}", n)
            assert [client.get(f"dev:{n}") for n in range(200)] == [str(n) for n in range(200)]
        finally:
            client.close()
    finally:
        cluster.stop_all()


# --- prod: bootstrap, re-run, clients --------------------------------------------------


def test_six_nodes_bootstrap_into_three_masters_with_a_replica_each(prod: LocalCluster) -> None:
    started = time.monotonic()
    job_ok(prod, "reconcile", 3, 1)
    RESULTS["bootstrap_seconds"] = time.monotonic() - started
    masters, replicas = roles(prod)
    assert len(masters) == 3 and len(replicas) == 3
    assert sum(m.slot_count for m in masters) == SLOTS
    assert sorted(r.master_id for r in replicas) == sorted(m.node_id for m in masters)
    assert prod.healthy(6)
    for node in prod.running():
        assert prod.password not in node.cmdline(), "the password is on a command line"
        assert prod.probe(node, "probe-readiness.sh", REDIS_READY_LATCH=f"{node.data_dir}/../latch").returncode == 0
        assert prod.probe(node, "probe-liveness.sh").returncode == 0


def test_running_the_job_again_changes_nothing(prod: LocalCluster) -> None:
    before = prod.snapshot()
    epoch = prod.running()[0].client().execute_command("CLUSTER INFO")
    output = job_ok(prod, "reconcile", 3, 1)
    assert prod.snapshot() == before, f"the second run changed the cluster:\n{output}"
    assert "creating" not in output and "adding" not in output and "moves to" not in output
    assert "No rebalancing needed" in output
    current = [line for line in epoch.splitlines() if line.startswith("cluster_current_epoch")]
    assert current[0] in prod.running()[0].client().execute_command("CLUSTER INFO")
    preflight = job_ok(prod, "preflight", 3, 1)
    assert "nothing to remove" in preflight and prod.snapshot() == before


def test_cluster_client_works_against_the_prod_layout(prod: LocalCluster) -> None:
    client = prod.cluster_client()
    try:
        for n in range(2000):
            client.set(f"keep:{n}", n)
        assert client.mget_nonatomic([f"keep:{n}" for n in range(2000)]) == [str(n) for n in range(2000)]
    finally:
        client.close()


# --- prod: failover drills ---------------------------------------------------------------


def test_sigkill_of_a_master_fails_over_without_losing_acknowledged_writes(prod: LocalCluster) -> None:
    results = [sigkill_master(prod, run) for run in range(RUNS)]
    RESULTS["sigkill"] = results
    for result in results:
        assert result.acked >= 50
        assert result.lost == [], f"WAIT-acknowledged writes lost: {result.lost[:10]}"
    assert statistics.median(r.failover_seconds for r in results) < 15


def test_prestop_hands_a_master_over_with_a_short_write_gap(prod: LocalCluster) -> None:
    gaps = [restart_master(prod, run, prestop=True, restart_delay=RESTART_DELAY) for run in range(RUNS)]
    RESULTS["prestop_gap"] = gaps
    assert statistics.median(gaps) < 3


# --- prod: full restart on new addresses ------------------------------------------------


def test_full_restart_on_new_addresses_heals_by_itself(prod: LocalCluster) -> None:
    old = {node.ordinal: node.ip for node in prod.running()}
    for node in prod.running():
        node.send(signal.SIGTERM)
    for node in prod.nodes:
        node.stop(signal.SIGTERM)
    prod.template = prod.alternate_template  # every pod comes back with a new IP
    started = time.monotonic()
    prod.start(range(6))
    assert all(prod.node(n).ip != ip for n, ip in old.items())
    prod.wait_healthy(6, timeout=120)
    RESULTS["full_restart_heal_seconds"] = time.monotonic() - started
    client = prod.cluster_client()
    try:
        assert client.mget_nonatomic([f"keep:{n}" for n in range(2000)]) == [str(n) for n in range(2000)]
    finally:
        client.close()
    output = job_ok(prod, "reconcile", 3, 1)
    assert "adding" not in output and "creating" not in output


# --- prod: scale out, scale in ------------------------------------------------------------


def test_two_new_nodes_with_four_masters_rebalance_evenly(prod: LocalCluster) -> None:
    prod.start([6, 7])
    job_ok(prod, "reconcile", 4, 1)
    masters, replicas = roles(prod)
    counts = sorted(m.slot_count for m in masters)
    RESULTS["slots_after_rebalance"] = counts
    assert len(masters) == 4 and len(replicas) == 4
    even = SLOTS / 4
    assert all(abs(count - even) / even <= 0.02 for count in counts), counts
    assert sorted(r.master_id for r in replicas) == sorted(m.node_id for m in masters)
    assert prod.healthy(8)


def test_lowering_masters_is_refused_without_drain_and_loses_nothing_with_it(prod: LocalCluster) -> None:
    client = prod.cluster_client()
    try:
        for n in range(3000):
            client.set(f"drain:{n}", n)
    finally:
        client.close()
    # Make sure a node about to go is a master owning slots with no replica that stays.
    doomed = [prod.node(6), prod.node(7)]
    view = prod.view()
    by_address = {info.address: info for info in view.values()}
    if not any(by_address[node.address].is_master for node in doomed):
        replica = by_address[doomed[0].address]
        doomed[0].client().execute_command("CLUSTER FAILOVER")
        prod.wait_healthy(8)
        assert prod.view()[replica.node_id].is_master
    before = prod.snapshot()
    refused = prod.job("preflight", 3, 1, drain=False)
    assert refused.returncode != 0
    assert "redisCluster.drain.enabled" in refused.stderr, refused.stderr[-2000:]
    assert prod.snapshot() == before, "a refused scale-in changed the cluster"

    started = time.monotonic()
    job_ok(prod, "preflight", 3, 1, drain=True)
    for node in doomed:  # the StatefulSet shrinks
        node.stop(signal.SIGTERM)
    prod.nodes = prod.nodes[:6]
    job_ok(prod, "reconcile", 3, 1, drain=True)
    RESULTS["drain_seconds"] = time.monotonic() - started
    masters, replicas = roles(prod)
    assert len(masters) == 3 and len(replicas) == 3
    assert prod.healthy(6)
    client = prod.cluster_client()
    try:
        values = client.mget_nonatomic([f"drain:{n}" for n in range(3000)])
        kept = client.mget_nonatomic([f"keep:{n}" for n in range(2000)])
    finally:
        client.close()
    lost = sum(v is None for v in values) + sum(v is None for v in kept)
    RESULTS["drain_keys_lost"] = lost
    assert lost == 0


def test_a_failed_node_that_is_none_of_the_pods_is_forgotten(prod: LocalCluster) -> None:
    """A member the StatefulSet no longer runs but the cluster still lists as failed (on the
    local cluster: a replica removed by masterCount 6 -> 3 whose pod came back once more
    before the shrink deleted it, re-added by gossip) is forgotten by the reconcile Job."""
    ghost = prod.node(8)
    ghost.start()
    ghost.wait_up()
    seed = prod.node(0)
    ghost.client().execute_command("CLUSTER MEET", seed.ip, prod.port)
    ghost_id = ghost.myid()
    master_id = next(info.node_id for info in prod.masters())
    wait_until(lambda: ghost_id in seed.nodes() and master_id in ghost.nodes(), 30, "the new node to meet the cluster")
    ghost.client().execute_command("CLUSTER REPLICATE", master_id)
    wait_until(lambda: seed.nodes()[ghost_id].master_id == master_id, 30, "the new node to become a replica")
    ghost.stop(signal.SIGKILL)  # its pod is gone, never taken out of the cluster
    prod.nodes = prod.nodes[:6]
    wait_until(lambda: "fail" in seed.nodes()[ghost_id].flags, 60, "the cluster to flag the gone node as failed")

    output = job_ok(prod, "reconcile", 3, 1)
    assert f"forgetting {ghost_id}" in output
    for node in prod.running():
        assert ghost_id not in node.nodes(), f"node {node.ordinal} still lists the gone node"
    assert prod.healthy(6)
    assert "forgetting" not in job_ok(prod, "reconcile", 3, 1)  # nothing left to forget


# --- baseline: Redis' and Bitnami's defaults ------------------------------------------------


def test_baseline_defaults_and_report(tmp_path: Path) -> None:
    """Node timeout 15000 ms and no preStop switchover: the same drills, for comparison."""
    cluster = make_cluster(tmp_path, "prod", "127.0.0.3%d", "redisCluster.clusterNodeTimeout=15000")
    assert "cluster-node-timeout 15000" in cluster.files["redis.conf"]
    try:
        cluster.start(range(6))
        job_ok(cluster, "reconcile", 3, 1)
        kills = [sigkill_master(cluster, run) for run in range(RUNS)]
        gaps = [restart_master(cluster, run, prestop=False, restart_delay=RESTART_DELAY) for run in range(RUNS)]
    finally:
        cluster.stop_all()
    for result in kills:
        assert result.lost == []
    RESULTS["baseline_sigkill"] = kills
    RESULTS["baseline_gap"] = gaps


@report.summary
def _report() -> list[str]:
    """The figures of this module's drills, against the baseline, for the summary."""
    if "baseline_sigkill" not in RESULTS:
        return []
    ours_kill = [r.failover_seconds for r in RESULTS.get("sigkill", [])]
    base_kill = [r.failover_seconds for r in RESULTS["baseline_sigkill"]]
    ours_gap = RESULTS.get("prestop_gap", [])
    base_gap = RESULTS["baseline_gap"]
    rows = [("measurement", "ours (timeout 5000, preStop)", "baseline (15000, none)", "runs ours / baseline", "ratio")]
    for name, ours, base, unit in (
        ("failover after SIGKILL", ours_kill, base_kill, "s"),
        (f"write gap, master restart ({RESTART_DELAY:.0f}s pod delay)", ours_gap, base_gap, "s"),
    ):
        if not ours:
            continue
        median_ours, median_base = statistics.median(ours), statistics.median(base)
        rows.append(
            (
                name,
                f"{median_ours:.2f} {unit}",
                f"{median_base:.2f} {unit}",
                f"{', '.join(f'{v:.2f}' for v in ours)} / {', '.join(f'{v:.2f}' for v in base)}",
                f"{median_base / median_ours:.1f}x" if median_ours else "-",
            )
        )
        record(name, ours, unit, variant="ours", median_ratio_baseline_over_ours=round(median_base / median_ours, 2))
        record(name, base, unit, variant="baseline")
    acked = sum(r.acked for r in RESULTS.get("sigkill", []) + RESULTS["baseline_sigkill"])
    lost = sum(len(r.lost) for r in RESULTS.get("sigkill", []) + RESULTS["baseline_sigkill"])
    rows.append(("WAIT-1-acknowledged writes lost on SIGKILL", f"{lost} of {acked}", "", "", ""))
    if "slots_after_rebalance" in RESULTS:
        counts = RESULTS["slots_after_rebalance"]
        spread = (max(counts) - min(counts)) / (SLOTS / 4) * 100
        rows.append(("slots per master after 4-master rebalance", str(counts), "", f"spread {spread:.2f}%", ""))
        record("slots per master after rebalance", [float(c) for c in counts], "slots", spread_percent=round(spread, 3))
    if "drain_keys_lost" in RESULTS:
        rows.append(("keys lost draining 4 -> 3 masters", str(RESULTS["drain_keys_lost"]), "", "", ""))
        record("keys lost in drain", [float(RESULTS["drain_keys_lost"])], "keys")
    if "full_restart_heal_seconds" in RESULTS:
        rows.append(("full restart on new IPs -> healthy", f"{RESULTS['full_restart_heal_seconds']:.1f} s", "", "", ""))
        record("full restart heal", [RESULTS["full_restart_heal_seconds"]], "s")
    report.table("Redis Cluster conformance figures", rows[0], rows[1:])
    return []
