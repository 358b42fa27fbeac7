"""Nodes, zones, scheduling on every node, the add-ons, and resource metrics."""

from __future__ import annotations

import functools
import re

from tests.cluster.conftest import NODES, toolbox_pod
from tests.kube import Cluster, cluster_tool, pod_ready
from tools.cluster import addons, layout, ns
from tools.cluster.layout import ClusterState


def test_every_node_is_ready_in_three_zones(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    assert len(nodes) >= NODES
    for item in nodes:
        ready = [c for c in item["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{item['metadata']['name']}: {ready}"
        labels = item["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == item["metadata"]["name"]
        assert item["spec"].get("podCIDR"), f"{item['metadata']['name']} has no pod CIDR"
    zones = {item["metadata"]["labels"].get("topology.kubernetes.io/zone") for item in nodes}
    assert zones == {"zone-a", "zone-b", "zone-c"}


def test_every_addon_is_ready(cluster: Cluster) -> None:
    for namespace, workload in addons.WORKLOADS:
        kind, name = workload.split("/")
        obj = cluster.get("-n", namespace, kind, name)
        if kind == "daemonset":
            assert obj["status"]["numberReady"] == obj["status"]["desiredNumberScheduled"] == len(cluster.nodes())
        else:
            assert obj["status"].get("readyReplicas") == obj["spec"]["replicas"], f"{namespace}/{workload}: {obj['status']}"


def test_a_pod_runs_on_every_node(cluster: Cluster, namespace: str) -> None:
    names = [n["metadata"]["name"] for n in cluster.nodes()]
    cluster.apply(namespace, *(toolbox_pod(f"on-{n}", command="sleep 3600", node=n) for n in names))
    for n in names:
        cluster.wait(f"pod on-{n} Ready", functools.partial(pod_ready, cluster, namespace, f"on-{n}"))
    placed = {p["spec"]["nodeName"] for p in cluster.get("-n", namespace, "pods")["items"]}
    assert placed == set(names)


def test_kubectl_top_reports_cpu_and_memory(cluster: Cluster, namespace: str) -> None:
    cluster.apply(namespace, toolbox_pod("busy", command="while :; do :; done"))
    cluster.wait("pod busy Ready", lambda: pod_ready(cluster, namespace, "busy"))

    def figures() -> bool:
        out = cluster.kubectl("top", "pods", "-n", namespace, "--no-headers", check=False)
        return bool(re.search(r"^busy\s+\d+m\s+\d+Mi", out, re.MULTILINE))

    # metrics-server scrapes every 15 s and needs two samples for a CPU rate
    cluster.wait("kubectl top pods to show busy's CPU and memory", figures, timeout=120, interval=5)
    busy = re.search(r"^busy\s+(\d+)m", cluster.kubectl("top", "pods", "-n", namespace, "--no-headers"), re.M)
    assert busy, "busy left kubectl top's list"
    cpu = int(busy.group(1))
    assert cpu > 100, f"a busy loop should use more than 100m CPU, top says {cpu}m"
    nodes = cluster.kubectl("top", "nodes", "--no-headers")
    assert len(nodes.strip().splitlines()) == len(cluster.nodes())


def test_a_lost_node_loses_every_process_and_boots_with_its_pods(cluster: Cluster, namespace: str) -> None:
    # the last node: node 1 carries the forwarder's path to the registry
    lost = layout.Node(cluster.info.nodes).name
    cluster.apply(namespace, toolbox_pod("survivor", command="sleep 3600", node=lost))
    cluster.wait("pod survivor Ready", lambda: pod_ready(cluster, namespace, "survivor"))
    before = cluster.get("-n", namespace, "pod", "survivor")["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    cluster_tool("node", "stop", lost)
    try:
        state = ClusterState.load(cluster.state)
        assert state is not None and lost in state.stopped_nodes
        assert not ns.subtree_pids(state.cgroup_parents, lost), "a process of the lost node survived"
        # nothing drained, nothing deleted: the pod is still bound to the dead node
        assert cluster.get("-n", namespace, "pod", "survivor")["spec"]["nodeName"] == lost
    finally:
        cluster_tool("node", "start", lost)
    state = ClusterState.load(cluster.state)
    assert state is not None and not state.stopped_nodes

    def started_again() -> bool:
        # the same pod object, its container started again by the booted node's kubelet (a
        # Ready status from before the loss stays on the API server until then)
        status = cluster.get("-n", namespace, "pod", "survivor")["status"]["containerStatuses"][0]
        return status["state"].get("running", {}).get("startedAt", "") > before and pod_ready(cluster, namespace, "survivor")

    cluster.wait("pod survivor started again on the booted node", started_again, timeout=180)
    # the add-ons on the booted node are back before the next test needs them
    for namespace_of, workload in addons.WORKLOADS:
        cluster.kubectl("-n", namespace_of, "rollout", "status", workload, "--timeout=180s", timeout=200)
