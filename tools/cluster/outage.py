"""`node stop NAME` and `node start NAME`: lose a node the way a host dies, then boot it again.

stop: every process of the node (its agent, containerd, the kubelet, kube-proxy and every
container on it) gets SIGKILL at once, as at a power cut: nothing drains, nothing shuts
down, no pod is deleted; the control plane learns of it only when the node's lease stops
being renewed. The node's network namespace, its disks and its volumes stay, as a dead
host keeps its cable and its disks.

start: the node boots: its /run is emptied (a reboot empties tmpfs), then its agent starts
containerd, the kubelet and kube-proxy from the spec `cluster up` wrote; the kubelet finds
its pods on the API server and starts their containers again on the same volumes.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from tools.cluster import layout, node, ns
from tools.cluster.layout import ClusterState, Node
from tools.cluster.lifecycle import kubectl
from tools.cluster.util import ClusterError, fmt_seconds, say, wait_until


def stop_node(name: str) -> None:
    state, cluster, target = _node_of(name)
    if name in cluster.stopped_nodes:
        say(f"{name} is stopped already")
        return
    if len(cluster.node_agents) - len(cluster.stopped_nodes) <= 1:
        raise ClusterError(f"{name} is the only running node; stopping it would stop every pod (make cluster-down does that)")
    left = ns.kill_unit(cluster.cgroup_parents, target.name)
    if left:
        raise ClusterError(f"processes {sorted(left)} of {name} did not die")
    cluster.stopped_nodes.append(name)
    cluster.save(state)
    say(f"{name} lost: every process of it killed (its pods, volumes and network namespace stay); `node start {name}` boots it")


def start_node(name: str, *, timeout: float = 240) -> float:
    """Boot a stopped node; the seconds until it is Ready again."""
    state, cluster, target = _node_of(name)
    if name not in cluster.stopped_nodes and ns.alive(cluster.node_agents.get(name, 0)):
        say(f"{name} runs already")
        return 0.0
    start, booted = time.monotonic(), time.time()
    _empty_run_dir(target.dir(state) / "run")
    ns.create_unit(cluster.cgroup_parents, target.name)
    cluster.node_agents[name] = node.start_agent(target, state, target.dir(state) / "spec.json")
    cluster.stopped_nodes = [n for n in cluster.stopped_nodes if n != name]
    cluster.save(state)
    kube = kubectl(state)

    def ready() -> bool:
        # a Ready the kubelet wrote before it died says nothing about now: only a heartbeat
        # of the booted kubelet counts
        conditions = kube.json("get", "node", name)["status"].get("conditions", [])
        return any(
            c["type"] == "Ready" and c["status"] == "True" and _epoch(c.get("lastHeartbeatTime", "")) >= int(booted)
            for c in conditions
        )

    wait_until(f"{name} to be Ready again", ready, timeout=timeout, interval=1)
    took = time.monotonic() - start
    say(f"{name} booted and Ready in {fmt_seconds(took)}")
    return took


def _node_of(name: str) -> tuple[Path, ClusterState, Node]:
    state = layout.state_dir()
    cluster = ClusterState.load(state)
    if cluster is None:
        raise ClusterError("no local cluster runs (make cluster-up starts one)")
    by_name = {n.name: n for n in layout.nodes(cluster.nodes)}
    if name not in by_name:
        raise ClusterError(f"no node {name!r}; the cluster's nodes are {', '.join(by_name)}")
    return state, cluster, by_name[name]


def _empty_run_dir(run_dir: Path) -> None:
    """What a reboot does to /run; refused while anything of the host is mounted below it."""
    mounted = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f" {run_dir}/" in line]
    if mounted:
        raise ClusterError(f"{run_dir} has mounts in the host's namespace; not emptying it:\n" + "\n".join(mounted))
    for entry in run_dir.iterdir() if run_dir.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def _epoch(timestamp: str) -> float:
    """An API server timestamp (RFC 3339, UTC, whole seconds) as Unix time; 0 when absent."""
    if not timestamp:
        return 0.0
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
