"""The guide's scaling, by `pulumi up` on the running prod stack, under client load: a
writer in a backend pod writes through the Services while the stack is scaled out and
back in, and every acknowledged write must be read back.

- patroni.replicaCount 3 -> 5 -> 3: five members streaming, then three again;
- redisCluster.masterCount 3 -> 6: the reconcile Job joins the new nodes and rebalances
  the slots, `cluster_state:ok` throughout, no key lost (keys seeded across every slot
  before, counted after); back to 3 by redisCluster.drain (the preflight Job moves the
  slots of the masters that go onto the ones that stay before the StatefulSet shrinks).
  Six masters with a replica each on separate nodes need 12 schedulable nodes: the
  local cluster grows to that;
- kafka.replicaCount 3 -> 5: the new brokers register, the controllers' StatefulSet and
  pods are untouched, the acks=all producer sees no error; back to 3 by the README's
  procedure: every partition with a replica on a broker that goes is reassigned first
  (kafka-reassign-partitions.sh), then the count is lowered and the gone brokers are
  unregistered from the quorum.

Minutes each (members clone, brokers start, the stack is put back), so `make drills`
runs them (AI_INFRA_DRILL_NODES=1) and CI does not. The stack's config is put back after
each test, whatever happened."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests.deployed import Deployed
from tests.kube import cluster_tool
from tests.prod import drills
from tests.prod.stack_changes import record, remove_key, set_key, up

pytestmark = pytest.mark.skipif(
    os.environ.get("AI_INFRA_DRILL_NODES") != "1", reason="scaling drills run from `make drills` (AI_INFRA_DRILL_NODES=1)"
)
SCALED = 5
KEPT = 3  # the prod default of both
WRITER_SECONDS = 1800  # an upper bound: each test stops its writer when its change is over


def _streaming(prod: Deployed, count: int) -> bool:
    states = [m.get("State") for m in drills.patroni_members(prod)]
    return len(states) == count and states.count("running") == 1 and states.count("streaming") == count - 1


def test_patroni_scales_out_to_five_members_and_back_under_load(prod: Deployed, config_restored: None) -> None:
    drills.wait_healthy(prod)
    writer = drills.Writer(prod, "postgres", WRITER_SECONDS, drills.writer_pod(prod))
    writer.steady()
    fault = time.time()
    set_key("patroni.replicaCount", SCALED)
    ups = [up()]
    prod.cluster.wait("five Patroni members, four streaming", lambda: _streaming(prod, SCALED), timeout=300, interval=3)
    set_key("patroni.replicaCount", KEPT)
    ups.append(up())
    prod.cluster.wait("three Patroni members again, two streaming", lambda: _streaming(prod, KEPT), timeout=300, interval=3)
    writer.stop()
    writes = writer.finish()
    record(f"patroni.replicaCount {KEPT} -> {SCALED} -> {KEPT}", ups, writes, fault)
    assert writes.lost == 0, writes.summary


def _brokers_registered(prod: Deployed) -> set[int]:
    code, out = prod.exec(f"{drills.KAFKA}-0", f"kafka-broker-api-versions.sh --bootstrap-server {drills.BOOTSTRAP}")
    assert code == 0, out[-2000:]
    return {int(m) for m in re.findall(r"\(id: (\d+) rack", out)}


def _controllers(prod: Deployed) -> tuple[int, list[str]]:
    """The controller StatefulSet's generation and its pods' uids: what must not change."""
    sts = prod.cluster.get("-n", prod.namespace, "statefulset", drills.KAFKA_CONTROLLER)
    pods = prod.pods("-l", "app.kubernetes.io/name=kafka-controller")
    return int(sts["metadata"]["generation"]), sorted(p["metadata"]["uid"] for p in pods)


def _move_partitions_off(prod: Deployed, leaving: set[int], staying: list[int]) -> int:
    """The README's procedure before lowering kafka.replicaCount: every partition with a
    replica on a leaving broker is reassigned to staying ones; returns how many moved."""
    code, out = prod.exec(f"{drills.KAFKA}-0", f"kafka-topics.sh --bootstrap-server {drills.BOOTSTRAP} --describe")
    assert code == 0, out[-2000:]
    plan = []
    for topic, partition, replicas in re.findall(r"Topic: (\S+)\s+Partition: (\d+)\s+Leader: \S+\s+Replicas: ([\d,]+)", out):
        current = [int(r) for r in replicas.split(",")]
        if not set(current) & leaving:
            continue
        spare = iter(b for b in staying if b not in current)
        moved = [r if r not in leaving else next(spare) for r in current]
        plan.append({"topic": topic, "partition": int(partition), "replicas": moved})
    if not plan:
        return 0
    document = json.dumps({"version": 1, "partitions": plan})
    tool = f"kafka-reassign-partitions.sh --bootstrap-server {drills.BOOTSTRAP} --reassignment-json-file /tmp/ai-infra-plan.json"
    code, out = prod.exec(f"{drills.KAFKA}-0", f"echo '{document}' > /tmp/ai-infra-plan.json && {tool} --execute")
    assert code == 0, out[-2000:]
    prod.cluster.wait(
        "the reassignment to complete",
        lambda: "is still in progress" not in prod.exec(f"{drills.KAFKA}-0", f"{tool} --verify")[1],
        timeout=300, interval=3,
    )  # fmt: skip
    return len(plan)


def test_kafka_scales_out_to_five_brokers_and_back_under_load(prod: Deployed, config_restored: None) -> None:
    drills.wait_healthy(prod)
    controllers = _controllers(prod)
    writer = drills.Writer(prod, "kafka", WRITER_SECONDS, drills.writer_pod(prod))
    writer.steady()
    fault = time.time()
    set_key("kafka.replicaCount", SCALED)
    ups = [up()]
    ids = {drills.BROKER_ID_OFFSET + i for i in range(SCALED)}
    prod.cluster.wait("five brokers registered", lambda: _brokers_registered(prod) == ids, timeout=300, interval=5)
    assert _controllers(prod) == controllers, "scaling the brokers touched the controller quorum"
    # a topic made now may place replicas on the new brokers: move them back first
    code, out = prod.exec(f"{drills.KAFKA}-0", f"kafka-topics.sh --bootstrap-server {drills.BOOTSTRAP} --create "
                          "--topic ai-infra-scaling-probe --partitions 6 --replication-factor 3")  # fmt: skip
    assert code == 0, out
    staying = sorted(drills.BROKER_ID_OFFSET + i for i in range(KEPT))
    moved = _move_partitions_off(prod, ids - set(staying), staying)
    set_key("kafka.replicaCount", KEPT)
    ups.append(up())
    for gone in sorted(ids - set(staying)):
        unregister = f"kafka-cluster.sh unregister --bootstrap-server {drills.BOOTSTRAP} --id {gone}"
        code, out = prod.exec(f"{drills.KAFKA}-0", unregister)
        assert code == 0, out
    prod.cluster.wait("three brokers registered", lambda: _brokers_registered(prod) == set(staying), timeout=120, interval=5)
    assert _controllers(prod) == controllers, "scaling the brokers in touched the controller quorum"
    writer.stop()
    writes = writer.finish()
    record(f"kafka.replicaCount {KEPT} -> {SCALED} -> {KEPT} ({moved} partitions moved first)", ups, writes, fault)
    assert writes.lost == 0, writes.summary
    assert not writes.errors, writes.errors[:5]


REDIS_MASTERS_SCALED = 6
REDIS_SEED_KEYS = 3000  # spread over every slot by their names
# 6 masters x (1 + 1 replica) pods, each on a node of its own (requireSeparateNodes)
REDIS_SCALED_NODES = REDIS_MASTERS_SCALED * 2


def _redis(prod: Deployed, command: str) -> str:
    code, out = prod.exec(f"{drills.REDIS}-0", command, container="redis")
    assert code == 0, out[-2000:]
    return out


def _redis_masters(prod: Deployed) -> dict[str, int]:
    """Each master's address and the number of slots it owns."""
    masters = {}
    for line in _redis(prod, "redis-cli cluster nodes").splitlines():
        fields = line.split()
        if len(fields) >= 8 and "master" in fields[2] and "fail" not in fields[2]:
            owned = 0
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit():
                    owned += int(high or low) - int(low) + 1
            masters[fields[1].split("@")[0]] = owned
    return masters


def _seeded_keys(prod: Deployed) -> int:
    """The seed keys the cluster holds: counted on every master, whichever owns them now."""
    masters = "redis-cli cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ {split($2, a, \"@\"); print a[1]}'"
    count = "redis-cli -h ${node%:*} -p ${node##*:} --scan --pattern 'ai-infra-scaling-seed:*' | wc -l"
    script = f"total=0; for node in $({masters}); do n=$({count}); total=$((total + n)); done; echo $total"
    return int(_redis(prod, script).split()[-1])


def _watch_cluster_state(prod: Deployed, answers: list[str], bad: list[str]) -> drills.Watch:
    """`cluster info` asked every 2 s while the stack scales: every answer goes to
    ``answers``, every one not cluster_state:ok to ``bad`` too."""

    def look() -> None:
        code, out = prod.exec(f"{drills.REDIS}-0", "redis-cli cluster info", container="redis", timeout=30)
        answers.append(out)
        if code != 0 or "cluster_state:ok" not in out:
            bad.append(f"{time.strftime('%H:%M:%S')} {out.strip()[:200]}")

    return drills.Watch(look, 2)


def test_redis_scales_out_to_six_masters_and_back_under_load(prod: Deployed, config_restored: None) -> None:
    cluster_tool("up", "--nodes", str(REDIS_SCALED_NODES), "--at-least")
    drills.wait_healthy(prod)
    seed = "; ".join([
        f"for i in $(seq 1 {REDIS_SEED_KEYS}); do echo \"SET ai-infra-scaling-seed:$i $i\"; done | redis-cli -c >/dev/null",
        "echo seeded",
    ])  # fmt: skip
    _redis(prod, seed)
    before = _seeded_keys(prod)
    assert before == REDIS_SEED_KEYS, before
    writer = drills.Writer(prod, "redis", WRITER_SECONDS, drills.writer_pod(prod))
    writer.steady()
    answers: list[str] = []
    bad: list[str] = []
    watch = _watch_cluster_state(prod, answers, bad)
    fault = time.time()
    try:
        set_key("redisCluster.masterCount", REDIS_MASTERS_SCALED)
        ups = [up()]
        scaled = _redis_masters(prod)
        assert len(scaled) == REDIS_MASTERS_SCALED, scaled
        # the rebalance spreads the 16384 slots evenly (redis-cli's 2 % threshold)
        assert min(scaled.values()) >= 16384 // REDIS_MASTERS_SCALED * 0.97, scaled
        assert _seeded_keys(prod) == REDIS_SEED_KEYS
        set_key("redisCluster.drain.enabled", True)
        set_key("redisCluster.drain.fromMasterCount", REDIS_MASTERS_SCALED)
        set_key("redisCluster.masterCount", KEPT)
        ups.append(up())
        remove_key("redisCluster.drain")
    finally:
        watch.finish()
    kept = _redis_masters(prod)
    assert len(kept) == KEPT and sum(kept.values()) == 16384, kept
    after = _seeded_keys(prod)
    writer.stop()
    writes = writer.finish()
    record(f"redisCluster.masterCount {KEPT} -> {REDIS_MASTERS_SCALED} -> {KEPT}", ups, writes, fault)
    assert after == REDIS_SEED_KEYS, f"{REDIS_SEED_KEYS - after} seeded keys lost"
    assert not bad, f"cluster_state not ok in {len(bad)} of {len(answers)} looks: {bad[:5]}"
    assert writes.lost == 0, writes.summary
