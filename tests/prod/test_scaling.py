"""The guide's scaling, by `pulumi up` on the running prod stack, under client load: a
writer in a backend pod writes through the Services while the stack is scaled out and
back in, and every acknowledged write must be read back.

- patroni.replicaCount 3 -> 5 -> 3: five members streaming, then three again;
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
from collections.abc import Iterator

import pytest

from tests.conformance import report
from tests.deployed import Deployed, stack_run
from tests.prod import drills
from tests.prod.conftest import STACK
from tests.prod.test_data_safety import LOCAL_STACK_FILE

pytestmark = pytest.mark.skipif(
    os.environ.get("AI_INFRA_DRILL_NODES") != "1", reason="scaling drills run from `make drills` (AI_INFRA_DRILL_NODES=1)"
)
SCALED = 5
KEPT = 3  # the prod default of both
RESULTS: list[list[object]] = []


@report.summary
def _table() -> list[str]:
    if RESULTS:
        report.table(
            "Scaling by pulumi up on the running prod stack, under a writer (gap = longest interval between acknowledged writes)",
            ["change", "pulumi up s", "writer gap s", "lost/acked", "errors"],
            RESULTS,
        )
    return []


@pytest.fixture
def config_restored(prod: Deployed) -> Iterator[None]:
    original = LOCAL_STACK_FILE.read_text()
    yield
    if LOCAL_STACK_FILE.read_text() != original:
        LOCAL_STACK_FILE.write_text(original)
        _up()


def _set(key: str, value: int) -> None:
    result = stack_run("pulumi", STACK, "config", "set", "--path", f"ai-infra-matrix:{key}", str(value))
    assert result.returncode == 0, result.stderr[-3000:]


def _up() -> float:
    start = time.monotonic()
    result = stack_run("up", STACK, env={"YES": "1", "NODES": "7"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return time.monotonic() - start


def _members(prod: Deployed) -> list[dict[str, object]]:
    code, out = prod.exec(f"{drills.PATRONI}-0", "patronictl list -f json")
    assert code == 0, out
    members: list[dict[str, object]] = json.loads(out[out.index("[") :])
    return members


def _streaming(prod: Deployed, count: int) -> bool:
    states = [m.get("State") for m in _members(prod)]
    return len(states) == count and states.count("running") == 1 and states.count("streaming") == count - 1


def _record(change: str, ups: list[float], writes: drills.Writes, fault: float) -> None:
    # the writer must have outlived the last up, or part of the change went unwatched
    covered = writes.acks and writes.acks[-1] > fault + sum(ups)
    assert covered, f"the writer stopped before the last up ended: raise its seconds ({change})"
    RESULTS.append([change, " / ".join(f"{u:.1f}" for u in ups), writes.recovery_after(fault),
                    f"{writes.lost}/{writes.summary['acked']}", len(writes.errors)])  # fmt: skip
    report.measurement("prod-scaling", change=change, up_s=ups, gap_s=writes.recovery_after(fault), lost=writes.lost,
                       acked=writes.summary["acked"], errors=len(writes.errors))  # fmt: skip


def test_patroni_scales_out_to_five_members_and_back_under_load(prod: Deployed, config_restored: None) -> None:
    drills.wait_healthy(prod)
    writer = drills.Writer(prod, "postgres", 420, drills.writer_pod(prod))
    writer.steady()
    fault = time.time()
    _set("patroni.replicaCount", SCALED)
    ups = [_up()]
    prod.cluster.wait("five Patroni members, four streaming", lambda: _streaming(prod, SCALED), timeout=300, interval=3)
    _set("patroni.replicaCount", KEPT)
    ups.append(_up())
    prod.cluster.wait("three Patroni members again, two streaming", lambda: _streaming(prod, KEPT), timeout=300, interval=3)
    writes = writer.finish()
    _record(f"patroni.replicaCount {KEPT} -> {SCALED} -> {KEPT}", ups, writes, fault)
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
    writer = drills.Writer(prod, "kafka", 480, drills.writer_pod(prod))
    writer.steady()
    fault = time.time()
    _set("kafka.replicaCount", SCALED)
    ups = [_up()]
    ids = {drills.BROKER_ID_OFFSET + i for i in range(SCALED)}
    prod.cluster.wait("five brokers registered", lambda: _brokers_registered(prod) == ids, timeout=300, interval=5)
    assert _controllers(prod) == controllers, "scaling the brokers touched the controller quorum"
    # a topic made now may place replicas on the new brokers: move them back first
    code, out = prod.exec(f"{drills.KAFKA}-0", f"kafka-topics.sh --bootstrap-server {drills.BOOTSTRAP} --create "
                          "--topic ai-infra-scaling-probe --partitions 6 --replication-factor 3")  # fmt: skip
    assert code == 0, out
    staying = sorted(drills.BROKER_ID_OFFSET + i for i in range(KEPT))
    moved = _move_partitions_off(prod, ids - set(staying), staying)
    _set("kafka.replicaCount", KEPT)
    ups.append(_up())
    for gone in sorted(ids - set(staying)):
        unregister = f"kafka-cluster.sh unregister --bootstrap-server {drills.BOOTSTRAP} --id {gone}"
        code, out = prod.exec(f"{drills.KAFKA}-0", unregister)
        assert code == 0, out
    prod.cluster.wait("three brokers registered", lambda: _brokers_registered(prod) == set(staying), timeout=120, interval=5)
    assert _controllers(prod) == controllers, "scaling the brokers in touched the controller quorum"
    writes = writer.finish()
    _record(f"kafka.replicaCount {KEPT} -> {SCALED} -> {KEPT} ({moved} partitions moved first)", ups, writes, fault)
    assert writes.lost == 0, writes.summary
    assert not writes.errors, writes.errors[:5]
