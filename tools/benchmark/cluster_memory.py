"""The memory row of `make bench`: what a deployed stack's pods really use (metrics-server,
as `kubectl top` shows it) beside what they request and may use, per workload, and each
node's use beside what it can allocate. The defaults' requests are sized from this.

One look is one sample of the working set; a stack that has just come up has not reached
its steady state (a JVM grows its heap), so measure an idle stack some minutes after its
deploy, and again under load, and size from the larger.

    python -m tools.benchmark.cluster_memory --namespace ai-infra-prod
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from settings.base import parse_quantity
from tools.benchmark.deploy import Kubectl, local_cluster

MIB = Decimal(2**20)
METRICS = "/apis/metrics.k8s.io/v1beta1"
# a Deployment's pod is owned by a ReplicaSet named <deployment>-<pod-template-hash>
_TEMPLATE_HASH = re.compile(r"-[a-z0-9]{6,10}$")


@dataclass
class Workload:
    """One StatefulSet's or Deployment's pods: each pod's use, its request and limit (MiB)."""

    kind: str
    name: str
    used: list[float] = field(default_factory=list)
    requested: float = 0.0
    limit: float = 0.0

    def row(self) -> str:
        low, high = min(self.used), max(self.used)
        used = f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}"
        share = f"{max(self.used) / self.requested:.2f}" if self.requested else "-"
        limit = f"{self.limit:.0f}" if self.limit else "none"
        return f"| {self.kind}/{self.name} | {len(self.used)} | {used} | {self.requested:.0f} | {limit} | {share} |"


def _mib(quantity: str | None) -> float:
    return float(parse_quantity(quantity) / MIB) if quantity else 0.0


def _owner(pod: dict[str, Any]) -> tuple[str, str] | None:
    """The workload a pod belongs to, or None for a Job's pod (it comes and goes)."""
    owners = pod["metadata"].get("ownerReferences") or []
    if not owners:
        return ("Pod", pod["metadata"]["name"])
    kind, name = owners[0]["kind"], owners[0]["name"]
    if kind == "ReplicaSet":
        return ("Deployment", _TEMPLATE_HASH.sub("", name))
    return None if kind == "Job" else (kind, name)


def _container_totals(containers: Sequence[dict[str, Any]], part: str) -> float:
    return sum(_mib(c.get("resources", {}).get(part, {}).get("memory")) for c in containers)


def workloads(pods: Sequence[dict[str, Any]], usage: Sequence[dict[str, Any]]) -> list[Workload]:
    """Pods (the API's Pod objects) and their metrics (PodMetrics items) grouped by workload,
    the largest users first. Pods with no metrics yet are left out."""
    used_by_pod = {item["metadata"]["name"]: sum(_mib(c["usage"]["memory"]) for c in item["containers"]) for item in usage}
    found: dict[tuple[str, str], Workload] = {}
    for pod in pods:
        owner, name = _owner(pod), pod["metadata"]["name"]
        if owner is None or name not in used_by_pod:
            continue
        workload = found.setdefault(owner, Workload(*owner))
        workload.used.append(used_by_pod[name])
        containers = pod["spec"]["containers"]
        # every pod of a workload has the same template: the last one read stands for all
        workload.requested = _container_totals(containers, "requests")
        limits = [_mib(c.get("resources", {}).get("limits", {}).get("memory")) for c in containers]
        workload.limit = 0.0 if 0.0 in limits else sum(limits)  # one container without a limit: none
    return sorted(found.values(), key=lambda w: -max(w.used))


def _raw(kubectl: Kubectl, path: str) -> Any:
    return json.loads(kubectl("get", "--raw", path))


def report(namespace: str, cluster: Callable[[], Kubectl | None]) -> list[str]:
    """The memory table of ``namespace``, or one line saying why it is skipped."""
    kubectl = cluster()
    if kubectl is None:
        return [f"memory of {namespace}: skipped: no cluster"]
    if not kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name").strip():
        return [f"memory of {namespace}: skipped: no such namespace (deploy it: make up STACK=prod YES=1)"]
    return table(namespace, kubectl)


def table(namespace: str, kubectl: Kubectl) -> list[str]:
    pods = kubectl.json("get", "pods", "-n", namespace, "--field-selector=status.phase=Running")["items"]
    usage = _raw(kubectl, f"{METRICS}/namespaces/{namespace}/pods")["items"]
    found = workloads(pods, usage)
    lines = [
        f"Memory of {namespace} (metrics-server working set), MiB per pod:",
        "",
        "| workload | pods | used | requested | limit | used / requested (largest pod) |",
        "|---|---|---|---|---|---|",
        *(workload.row() for workload in found),
    ]
    used = sum(sum(w.used) for w in found)
    requested = sum(w.requested * len(w.used) for w in found)
    lines += ["", f"{namespace}: {used / 1024:.2f} GiB used, {requested / 1024:.2f} GiB requested"]
    lines += ["", *node_lines(kubectl)]
    return lines


def node_lines(kubectl: Kubectl) -> list[str]:
    """Each node's working set beside its allocatable memory (every namespace's pods and
    the node's own processes, as the kubelet counts them)."""
    allocatable = {
        n["metadata"]["name"]: _mib(n["status"]["allocatable"]["memory"]) for n in kubectl.json("get", "nodes")["items"]
    }
    usage = {n["metadata"]["name"]: _mib(n["usage"]["memory"]) for n in _raw(kubectl, f"{METRICS}/nodes")["items"]}
    parts = [f"{name} {usage.get(name, 0) / 1024:.2f}/{total / 1024:.2f}" for name, total in sorted(allocatable.items())]
    return ["nodes, GiB used / allocatable: " + ", ".join(parts)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="ai-infra-prod", help="the deployed stack's namespace (default ai-infra-prod)")
    args = parser.parse_args(argv)
    print("\n".join(report(args.namespace, local_cluster)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
