"""The guide's failover drills on the deployed prod stack, through the Services.

Each drill runs the drill writer (ai-infra-test-app write, tests/app) inside a backend
pod, which writes continuously through the same Services and NetworkPolicies as the
application and counts what each system acknowledged; after a few seconds of steady
writes the drill injects its fault (a pod deleted as `kubectl delete pod` does), the
writer keeps writing, then reads everything back. A drill's figures:

- recovery: seconds from the fault until writes are served again, i.e. the longest
  interval between two served writes from the fault on (0.02 s is the writer's pace: no
  interruption at all);
- lost: writes the system acknowledged as durable (a PostgreSQL commit, a Redis write
  WAIT-confirmed by its replica, an acks=all Kafka delivery) that the read-back did not
  find (goal: 0);
- for the Kafka controller drill, seconds until the quorum names a new active controller
  (an upper bound: each look is a kafka-metadata-quorum.sh run, a JVM start of 2-3 s);
- for Redis, the writes served and those served while not durable: after the handover the
  new master has no replica until the stopped pod is back and resynced, so WAIT cannot
  confirm them (the application's writes go on; their durability waits for the replica).

After each drill the stack is waited back to health (every member Ready, the Redis
cluster ok, Patroni streaming) so drills never overlap.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.deployed import Deployed
from tests.kube import cluster_tool

WARMUP_ACKS = 100  # steady writes before the fault (~2 s)
PATRONI = "ai-infra-patroni"
REDIS = "ai-infra-redis-cluster"
KAFKA = "ai-infra-kafka"
KAFKA_CONTROLLER = "ai-infra-kafka-controller"
BROKER_ID_OFFSET = 100
BOOTSTRAP = "localhost:9092"  # a broker's own listener, from inside a broker pod


@dataclass
class Writes:
    """What one drill writer run reported."""

    system: str
    acks: list[float] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    topic: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    def recovery_after(self, fault: float) -> float:
        """The longest interval without an acknowledgement from ``fault`` on."""
        times = [fault, *(t for t in self.acks if t >= fault)]
        return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else float("inf")

    @property
    def lost(self) -> int:
        return int(self.summary.get("lost", -1))


class Writer:
    """``ai-infra-test-app write SYSTEM`` in a backend pod, its events read as they come."""

    def __init__(self, deployed: Deployed, system: str, seconds: float, pod: str, replicas: int = 1) -> None:
        # a file of its own in the pod's /tmp ends it early (stop())
        self.stop_file = f"/tmp/ai-infra-drill-stop-{uuid.uuid4().hex[:12]}"
        command = f"ai-infra-test-app write {system} --seconds {seconds} --replicas {replicas} --stop-file {self.stop_file}"
        self.writes = Writes(system)
        self.seconds = seconds
        self.deployed, self.pod = deployed, pod
        self.process = subprocess.Popen(
            deployed.exec_argv(pod, command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.writes.output.append(line.rstrip())
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["event"] == "ack":
                self.writes.acks.append(event["t"])
            elif event["event"] == "error":
                self.writes.errors.append((event["t"], event["error"]))
            elif event["event"] == "topic":
                self.writes.topic = event["topic"]
            elif event["event"] == "summary":
                self.writes.summary = event

    def steady(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.writes.acks) < WARMUP_ACKS:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the {self.writes.system} writer never got steady:\n" + "\n".join(self.writes.output[-30:]))
            time.sleep(0.2)

    def stop(self) -> None:
        """End the writing now (it goes on to the read-back and the summary): for a change
        that takes as long as it takes, the writer outlives it by ``seconds`` and stops
        when it is over."""
        code, out = self.deployed.exec(self.pod, f"touch {self.stop_file}")
        assert code == 0, out

    def finish(self) -> Writes:
        self.process.wait(timeout=self.seconds + 300)
        self.reader.join(timeout=30)
        if not self.writes.summary:
            raise AssertionError(f"the {self.writes.system} writer gave no summary:\n" + "\n".join(self.writes.output[-30:]))
        return self.writes


class Watch:
    """``look`` called every ``interval`` seconds on a thread of its own while a change
    runs, until finish(): what it records is the caller's."""

    def __init__(self, look: Callable[[], None], interval: float) -> None:
        self.look, self.interval = look, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.look()

    def finish(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=60)


@dataclass
class DrillResult:
    drill: str
    victim: str
    recovery: float  # seconds (see the module docstring)
    lost: int
    acked: int
    detail: dict[str, Any] = field(default_factory=dict)


# --- finding the victims -----------------------------------------------------------------


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def patroni_leader(deployed: Deployed) -> str:
    """The Ready pod labelled role=primary. A leader lost with its node keeps that label
    (only Patroni on the pod itself changes it) until it runs again; the node controller
    marks it not Ready first, which also takes it out of the primary Service."""
    pods = [pod for pod in deployed.pods("-l", "role=primary") if _ready(pod)]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return str(pods[0]["metadata"]["name"])


def redis_master_of(deployed: Deployed, key: str) -> str:
    """The Redis pod that is master of ``key``'s slot."""
    code, slot = deployed.exec(f"{REDIS}-0", f"redis-cli cluster keyslot {key}", container="redis")
    assert code == 0, slot
    code, nodes = deployed.exec(f"{REDIS}-0", "redis-cli cluster nodes", container="redis")
    assert code == 0, nodes
    wanted = int(slot.strip())
    by_ip = {p["status"].get("podIP"): p["metadata"]["name"] for p in deployed.pods()}
    for line in nodes.splitlines():
        fields = line.split()
        if len(fields) < 9 or "master" not in fields[2] or "fail" in fields[2]:
            continue
        for span in fields[8:]:
            low, _, high = span.partition("-")
            if low.isdigit() and int(low) <= wanted <= int(high or low):
                return by_ip[fields[1].split(":")[0]]
    raise AssertionError(f"no master owns slot {wanted}:\n{nodes}")


def kafka_partition_leader(deployed: Deployed, topic: str) -> str:
    code, out = deployed.exec(f"{KAFKA}-0", f"kafka-topics.sh --bootstrap-server {BOOTSTRAP} --describe --topic {topic}")
    match = re.search(r"Partition: 0\s+Leader: (\d+)", out)
    assert code == 0 and match, out
    return f"{KAFKA}-{int(match.group(1)) - BROKER_ID_OFFSET}"


def kafka_active_controller(deployed: Deployed, broker: str = f"{KAFKA}-0") -> int:
    code, out = deployed.exec(broker, f"kafka-metadata-quorum.sh --bootstrap-server {BOOTSTRAP} describe --status")
    match = re.search(r"LeaderId:\s+(-?\d+)", out)
    assert code == 0 and match, out
    return int(match.group(1))


def patroni_members(deployed: Deployed) -> list[dict[str, Any]]:
    """`patronictl list -f json`: one dict per member (Member, Role, State, lags...)."""
    code, out = deployed.exec(f"{PATRONI}-0", "patronictl list -f json")
    assert code == 0, out
    members: list[dict[str, Any]] = json.loads(out[out.index("[") :])
    return members


def node_of(deployed: Deployed, pod: str) -> str:
    return str(deployed.cluster.get("-n", deployed.namespace, "pod", pod)["spec"].get("nodeName", ""))


def writer_pod(deployed: Deployed, *avoid: str) -> str:
    """A Ready backend pod on none of the nodes of ``avoid`` (pods a drill will stop, or
    whose node it will lose)."""
    nodes = {node_of(deployed, pod) for pod in avoid}
    for pod in deployed.pods("-l", "app.kubernetes.io/name=backend"):
        if _ready(pod) and pod["spec"].get("nodeName") not in nodes:
            return f"pod/{pod['metadata']['name']}"
    raise AssertionError(f"no Ready backend pod to write from outside the nodes {sorted(nodes)}")


# --- health between drills ---------------------------------------------------------------


def wait_healthy(deployed: Deployed, timeout: float = 600) -> None:
    def all_ready() -> bool:
        for kind in ("statefulsets", "deployments"):
            for item in deployed.cluster.get("-n", deployed.namespace, kind)["items"]:
                wanted, status = item["spec"].get("replicas", 1), item["status"]
                # a status the controller wrote before it saw the latest spec says nothing
                # (`pulumi up` can return that early: pulumi/pulumi-kubernetes#3329)
                if status.get("observedGeneration") != item["metadata"]["generation"]:
                    return False
                if status.get("readyReplicas", 0) != wanted or status.get("updatedReplicas", 0) != wanted:
                    return False
                # (with OnDelete, Patroni's, the controller never moves currentRevision:
                # updatedReplicas above is the measure)
                rolling = item["spec"].get("updateStrategy", {}).get("type", "RollingUpdate") == "RollingUpdate"
                if kind == "statefulsets" and rolling and status.get("currentRevision") != status.get("updateRevision"):
                    return False
        code, info = deployed.exec(f"{REDIS}-0", "redis-cli cluster info", container="redis")
        if code != 0 or "cluster_state:ok" not in info:
            return False
        try:
            members = patroni_members(deployed)
        except AssertionError:  # patronictl failed: not healthy yet
            return False
        states = [m.get("State") for m in members]
        return states.count("running") == 1 and states.count("streaming") == len(states) - 1

    deployed.cluster.wait("the prod stack to be healthy again", all_ready, timeout=timeout, interval=3)


# --- the drills --------------------------------------------------------------------------


def _delete_pod(deployed: Deployed, pod: str) -> float:
    """``kubectl delete pod`` as the guide writes it (graceful); the time it was asked."""
    fault = time.time()
    deployed.cluster.kubectl("-n", deployed.namespace, "delete", "pod", pod, "--wait=false")
    return fault


def patroni_leader_delete(deployed: Deployed, seconds: float = 75) -> DrillResult:
    victim = patroni_leader(deployed)
    writer = Writer(deployed, "postgres", seconds, writer_pod(deployed, victim))
    writer.steady()
    fault = _delete_pod(deployed, victim)
    writes = writer.finish()
    new_leader = patroni_leader(deployed)
    return DrillResult("Patroni leader pod deleted", victim, writes.recovery_after(fault), writes.lost,
                       int(writes.summary["acked"]), {"new_leader": new_leader})  # fmt: skip


def redis_master_delete(deployed: Deployed, seconds: float = 60) -> DrillResult:
    # the writer's keys share the hash tag {drill}: one slot, one master
    victim = redis_master_of(deployed, "{drill}")
    writer = Writer(deployed, "redis", seconds, writer_pod(deployed, victim))
    writer.steady()
    fault = _delete_pod(deployed, victim)
    writes = writer.finish()
    durable = int(writes.summary["acked"])
    return DrillResult("Redis master pod deleted", victim, writes.recovery_after(fault), writes.lost, durable,
                       {"served": len(writes.acks), "served_not_durable": len(writes.acks) - durable})  # fmt: skip


def kafka_broker_delete(deployed: Deployed, seconds: float = 60) -> DrillResult:
    writer = Writer(deployed, "kafka", seconds, writer_pod(deployed))
    writer.steady()
    victim = kafka_partition_leader(deployed, writer.writes.topic)
    fault = _delete_pod(deployed, victim)
    writes = writer.finish()
    return DrillResult("Kafka partition leader broker pod deleted", victim, writes.recovery_after(fault),
                       writes.lost, int(writes.summary["acked"]))  # fmt: skip


def kafka_controller_delete(deployed: Deployed, seconds: float = 45) -> DrillResult:
    old = kafka_active_controller(deployed)
    victim = f"{KAFKA_CONTROLLER}-{old}"
    writer = Writer(deployed, "kafka", seconds, writer_pod(deployed))
    writer.steady()
    fault = _delete_pod(deployed, victim)
    elected = float("inf")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            leader = kafka_active_controller(deployed)
        except AssertionError:
            leader = -1
        if leader not in {old, -1}:
            elected = time.time() - fault
            break
        time.sleep(0.5)
    writes = writer.finish()
    return DrillResult("Kafka active controller pod deleted", victim, writes.recovery_after(fault), writes.lost,
                       int(writes.summary["acked"]), {"new_active_controller_s": elected})  # fmt: skip


def _kafka_writer_off_the_leaders_node(deployed: Deployed, seconds: float) -> tuple[Writer, str]:
    """A steady Kafka writer and its topic's partition leader, on different nodes: the
    leader is known only once the writer made its topic, so a writer that shares its node
    is left to finish on its own and another starts elsewhere."""
    avoid: tuple[str, ...] = ()
    for _ in range(3):
        pod = writer_pod(deployed, *avoid)
        writer = Writer(deployed, "kafka", seconds, pod)
        writer.steady()
        victim = kafka_partition_leader(deployed, writer.writes.topic)
        if node_of(deployed, victim) != node_of(deployed, pod.removeprefix("pod/")):
            return writer, victim
        writer.process.kill()
        avoid = (*avoid, victim)
    raise AssertionError("every Kafka writer's partition leader was on the writer's own node")


def _node_lost(deployed: Deployed, system: str, seconds: float) -> DrillResult:
    """One system's node loss: the node of the member its writes depend on loses every
    process at once (tools/cluster/outage.py), is left dead while the writer goes on, then
    booted again."""
    if system == "kafka":
        writer, victim = _kafka_writer_off_the_leaders_node(deployed, seconds)
    else:
        victim = patroni_leader(deployed) if system == "postgres" else redis_master_of(deployed, "{drill}")
        writer = Writer(deployed, system, seconds, writer_pod(deployed, victim))
        writer.steady()
    node = node_of(deployed, victim)
    fault = time.time()
    cluster_tool("node", "stop", node)
    labelled: list[str] = []
    try:
        writes = writer.finish()
        # while the lost leader's node is still down: only the new leader is labelled so
        # (the new leader's on_role_change callback took the label off the lost one)
        labelled = [p["metadata"]["name"] for p in deployed.pods("-l", "role=primary")] if system == "postgres" else []
    finally:
        cluster_tool("node", "start", node)
    detail: dict[str, Any] = {"node": node}
    if system == "redis":
        detail["served_not_durable"] = len(writes.acks) - int(writes.summary["acked"])
    if system == "postgres":
        detail["new_leader"] = patroni_leader(deployed)
        assert labelled == [detail["new_leader"]], f"pods labelled primary with the lost leader's node down: {labelled}"
    return DrillResult(f"node lost: {system} (its {victim.rsplit('-', 1)[0].removeprefix('ai-infra-')} member's node)",
                       victim, writes.recovery_after(fault), writes.lost, int(writes.summary["acked"]), detail)  # fmt: skip


def _pods_by_node(deployed: Deployed) -> dict[str, list[str]]:
    by_node: dict[str, list[str]] = {}
    for pod in deployed.pods():
        if (pod["metadata"].get("ownerReferences") or [{}])[0].get("kind") == "StatefulSet":
            by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod["metadata"]["name"])
    return by_node


def _members(pods: list[str]) -> dict[str, str]:
    """Of one node's StatefulSet pods: its Patroni member, Redis node and Kafka member ("" for
    none): a broker, else a KRaft controller (a voter of the metadata quorum)."""
    found = {}
    for system, statefulsets in (("patroni", (PATRONI,)), ("redis", (REDIS,)), ("kafka", (KAFKA, KAFKA_CONTROLLER))):
        found[system] = next((p for s in statefulsets for p in pods if re.fullmatch(rf"{s}-\d+", p)), "")
    return found


def _redis_role(deployed: Deployed, pod: str) -> str:
    return deployed.exec(pod, "redis-cli role | head -1", container="redis")[1].strip()


def _patroni_roles(deployed: Deployed) -> dict[str, str]:
    """Each Patroni member's role as `patronictl list` prints it (Leader, Sync Standby, Replica)."""
    return {str(m["Member"]): str(m["Role"]) for m in patroni_members(deployed)}


# a switchover in synchronous mode goes only to the sync standby: Patroni answers any other
# candidate "candidate name does not match with sync_standby" (and patronictl exits 0)
_SWITCHOVER_RANK = {"Leader": 0, "Sync Standby": 1}


def choose_drain_node(members: dict[str, dict[str, str]], roles: dict[str, str]) -> str | None:
    """Of the nodes with a member of each system (``members``: node -> _members), the
    Patroni leader's, else the sync standby's (by ``roles``: member -> role); a broker's node
    first among equals (the scheduler may have put no broker beside a Patroni member).
    None when no node qualifies."""
    candidates = sorted(
        (n for n, m in members.items() if all(m.values()) and roles.get(m["patroni"]) in _SWITCHOVER_RANK),
        key=lambda n: (
            _SWITCHOVER_RANK[roles[members[n]["patroni"]]],
            not re.fullmatch(rf"{KAFKA}-\d+", members[n]["kafka"]),
            n,
        ),
    )
    return candidates[0] if candidates else None


def drain_target(deployed: Deployed) -> tuple[str, dict[str, str]]:
    """A node holding the Patroni leader, a Redis master and a Kafka broker (or, where the
    spread put no broker beside a Patroni member, a KRaft controller), made so where the
    spread left none: a node with a member of each becomes one by a Patroni switchover
    to its member (the leader's or the sync standby's node: the only switchover synchronous
    mode allows) and a Redis manual failover to its replica, as an operator would set up
    the drill. Returns the node and the pods it holds."""
    by_node = _pods_by_node(deployed)
    members = {node: _members(pods) for node, pods in by_node.items()}
    roles = _patroni_roles(deployed)
    node = choose_drain_node(members, roles)
    if node is None:
        raise AssertionError(
            f"no node holds a Patroni leader or sync standby, a Redis node and a Kafka member: {by_node}, roles {roles}"
        )
    held = members[node]
    if roles[held["patroni"]] != "Leader":
        code, out = deployed.exec(held["patroni"], f"patronictl switchover --candidate {held['patroni']} --force")
        assert code == 0 and "failed" not in out.lower(), out
        deployed.cluster.wait("the switchover", lambda: patroni_leader(deployed) == held["patroni"], timeout=120)
    if _redis_role(deployed, held["redis"]) != "master":
        code, out = deployed.exec(held["redis"], "redis-cli cluster failover", container="redis")
        assert code == 0 and "OK" in out, out
        deployed.cluster.wait("the Redis manual failover", lambda: _redis_role(deployed, held["redis"]) == "master", timeout=60)
    wait_healthy(deployed)
    return node, held


def node_drain(deployed: Deployed, seconds: float = 150, bound: float = 300) -> DrillResult:
    """`kubectl drain` of a node holding the Patroni leader, a Redis master and a Kafka
    broker or controller under writers of all three: it completes (every eviction the PDBs allow, each
    system losing one member at a time) and no acknowledged write is lost. The evicted
    members wait Pending for their node-bound volumes (local-path) until the uncordon."""
    node, held = drain_target(deployed)
    pod = writer_pod(deployed, held["patroni"])
    writers = [Writer(deployed, system, seconds, pod) for system in ("postgres", "redis", "kafka")]
    for writer in writers:
        writer.steady()
    fault = time.time()
    try:
        deployed.cluster.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={bound:.0f}s",
                                 timeout=bound + 30)  # fmt: skip
        drained = time.time() - fault
        results = [w.finish() for w in writers]
    finally:
        deployed.cluster.kubectl("uncordon", node)
    gaps = {w.system: round(w.recovery_after(fault), 2) for w in results}
    return DrillResult(f"node drained ({', '.join(held.values())})", node, drained, sum(w.lost for w in results),
                       sum(int(w.summary["acked"]) for w in results), {f"{k}_gap_s": v for k, v in gaps.items()})  # fmt: skip


Drill = Callable[[Deployed], DrillResult]
DRILLS: dict[str, Drill] = {
    "patroni": patroni_leader_delete,
    "redis": redis_master_delete,
    "kafka-broker": kafka_broker_delete,
    "kafka-controller": kafka_controller_delete,
}
# the node drills: a node lost (three systems) and a node drained; minutes each (the node
# boots and every member resyncs), so `make drills` runs them and CI does not
NODE_DRILLS: dict[str, Drill] = {
    "node-lost-patroni": functools.partial(_node_lost, system="postgres", seconds=90),
    "node-lost-redis": functools.partial(_node_lost, system="redis", seconds=90),
    "node-lost-kafka": functools.partial(_node_lost, system="kafka", seconds=90),
    "node-drain": node_drain,
}
