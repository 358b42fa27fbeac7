"""Node drain, and what the cluster keeps away from the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cluster.conftest import toolbox_pod
from tests.kube import Cluster
from tools.cluster import hostcheck, layout, ns


def test_drain_evicts_a_nodes_pods_and_they_come_back_elsewhere(cluster: Cluster, namespace: str) -> None:
    template = toolbox_pod("spread", command="sleep 3600")
    template.pop("apiVersion")
    template.pop("kind")
    template["metadata"] = {"labels": {"app": "spread"}}
    template["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"app": "spread"}}}
    ]  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "spread"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "spread"}}, "template": template},
    }
    cluster.apply(namespace, deployment)
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/spread", "--timeout=120s", timeout=130)
    # drain a node whose loss costs nobody else: not the registry's, not one holding another
    # namespace's local volumes (a deployed stack's databases cannot move off their node)
    keep = {p["spec"]["nodeName"] for p in cluster.get("-n", "kube-system", "pods", "-l", "k8s-app=registry")["items"]}
    for pod in cluster.get("pods", "-A")["items"]:
        claims = [v for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v]
        if claims and pod["metadata"]["namespace"] != namespace and pod["spec"].get("nodeName"):
            keep.add(pod["spec"]["nodeName"])
    pods = cluster.get("-n", namespace, "pods", "-l", "app=spread")["items"]
    candidates = [p["spec"]["nodeName"] for p in pods if p["spec"]["nodeName"] not in keep]
    assert candidates, f"every node with a spread pod holds the registry or another namespace's volumes: {sorted(keep)}"
    victim = candidates[0]
    evicted = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}
    try:
        cluster.kubectl("drain", victim, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s", timeout=150)

        def rescheduled() -> bool:
            now = cluster.get("-n", namespace, "pods", "-l", "app=spread")["items"]
            running = [p for p in now if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
            return len(running) == 3 and all(p["spec"]["nodeName"] != victim for p in running)

        cluster.wait(f"3 spread pods Running off {victim}", rescheduled, timeout=120)
        names = {p["metadata"]["name"] for p in cluster.get("-n", namespace, "pods", "-l", "app=spread")["items"]}
        assert not (evicted & names), f"pods {evicted & names} were not evicted from {victim}"
    finally:
        cluster.kubectl("uncordon", victim)


def test_the_host_network_namespace_gained_nothing(cluster: Cluster, host_before: dict[str, Any]) -> None:
    now = hostcheck.snapshot()
    problems = hostcheck.differences(host_before, now, ignore=hostcheck.WHILE_RUNNING)
    assert not problems, "\n".join(problems)
    netns = set(now["netns"]) - set(host_before["netns"])
    assert {n.split()[0] for n in netns if n} <= {
        layout.CONTROL_PLANE_NETNS,
        *(n.netns for n in layout.nodes(cluster.info.nodes)),
    }
    # the only new mounts are the namespace handles `ip netns add` makes under /run/netns
    mounts = set(now["mounts"]) - set(host_before["mounts"])
    assert all(m.startswith("/run/netns") for m in mounts), sorted(mounts)


def test_every_pod_cgroup_is_inside_the_tools_subtree(cluster: Cluster) -> None:
    parents = cluster.info.cgroup_parents
    subtree = {mount: f"{own.rstrip('/')}/{layout.CGROUP_NAME}/" for mount, own in parents.items()}
    pids = ns.subtree_pids(parents)
    outside = []
    for pid in pids:
        try:
            cgroups = ns.cgroups_of(pid)
        except OSError:
            continue  # exited meanwhile
        outside += [
            (pid, mount, path) for mount, path in cgroups.items() if mount in subtree and not path.startswith(subtree[mount])
        ]
    assert not outside, f"processes of the cluster outside its subtree: {outside[:10]}"
    memory = next(m for m in parents if m.endswith("/memory"))
    for node in layout.nodes(cluster.info.nodes):
        kubepods = Path(memory, subtree[memory].lstrip("/"), node.name, "kubepods")
        assert kubepods.is_dir(), f"{node.name}'s pods are not under {kubepods}"
    containers = [p for p in pids if "kubepods" in _memory_cgroup(p, memory)]
    assert containers, "no container process found in any node's kubepods cgroup"


def test_nodes_resolve_only_inside_and_mirror_every_registry(cluster: Cluster) -> None:
    for node in layout.nodes(cluster.info.nodes):
        etc = node.dir(cluster.state) / "etc"
        assert (etc / "resolv.conf").read_text().split() == ["nameserver", layout.DNS_SERVICE_IP]
        for registry in layout.MIRRORED_REGISTRIES:
            hosts = (etc / "certs.d" / registry / "hosts.toml").read_text()
            servers = [line for line in hosts.splitlines() if line.startswith(("server", "[host"))]
            assert all(f"{layout.REGISTRY_SERVICE_IP}:{layout.REGISTRY_PORT}" in s for s in servers), (registry, hosts)
        # containerd and the kubelet run in the node's mount namespace, where that file is /etc/resolv.conf
        spec = json.loads((node.dir(cluster.state) / "spec.json").read_text())
        assert [str(etc / "resolv.conf"), "/etc/resolv.conf"] in spec["binds"]


def _memory_cgroup(pid: int, memory: str) -> str:
    try:
        return ns.cgroups_of(pid).get(memory, "")
    except OSError:
        return ""
