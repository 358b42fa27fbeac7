"""The memory row of `make bench` (tools/benchmark/cluster_memory.py): pods grouped by
workload, their working set beside their requests and limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools import bench
from tools.benchmark import cluster_memory, deploy


def _pod(name: str, owner: tuple[str, str] | None, *containers: tuple[str, str | None]) -> dict[str, Any]:
    """A pod whose containers request and limit (request, limit) memory."""
    meta: dict[str, Any] = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    resources = [{"requests": {"memory": r}, **({"limits": {"memory": lim}} if lim else {})} for r, lim in containers]
    return {"metadata": meta, "spec": {"containers": [{"resources": r} for r in resources]}}


def _usage(name: str, *working_sets: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "containers": [{"usage": {"memory": w}} for w in working_sets]}


PODS = [
    _pod("kafka-0", ("StatefulSet", "kafka"), ("1Gi", "4Gi")),
    _pod("kafka-1", ("StatefulSet", "kafka"), ("1Gi", "4Gi")),
    _pod("redis-0", ("StatefulSet", "redis"), ("256Mi", "1Gi"), ("32Mi", "64Mi")),
    _pod("web-7d9f8b6c5-x2x9z", ("ReplicaSet", "web-7d9f8b6c5"), ("128Mi", None)),
    _pod("backup-29123-abcde", ("Job", "backup-29123"), ("64Mi", "64Mi")),
]
USAGE = [
    _usage("kafka-0", "700Mi"),
    _usage("kafka-1", "512000Ki"),
    _usage("redis-0", "6Mi", "10Mi"),
    _usage("web-7d9f8b6c5-x2x9z", "12Mi"),
    _usage("backup-29123-abcde", "30Mi"),
]


def test_pods_are_grouped_by_workload_largest_first_and_jobs_left_out() -> None:
    found = cluster_memory.workloads(PODS, USAGE)
    assert [(w.kind, w.name) for w in found] == [("StatefulSet", "kafka"), ("StatefulSet", "redis"), ("Deployment", "web")]
    kafka, redis, web = found
    assert kafka.used == [700.0, 500.0] and kafka.requested == 1024 and kafka.limit == 4096
    # a pod's figures are the sum of its containers'
    assert redis.used == [16.0] and redis.requested == 288 and redis.limit == 1088
    assert web.limit == 0.0  # a container with no limit: the pod has none
    assert kafka.row() == "| StatefulSet/kafka | 2 | 500-700 | 1024 | 4096 | 0.68 |"
    assert web.row() == "| Deployment/web | 1 | 12 | 128 | none | 0.09 |"


def test_a_pod_with_no_metrics_yet_is_left_out() -> None:
    assert [w.used for w in cluster_memory.workloads(PODS[:2], USAGE[:1])] == [[700.0]]


class FakeCluster:
    """kubectl answering the reads the memory row makes."""

    def __init__(self, namespaces: set[str]) -> None:
        self.namespaces = namespaces
        self.kubeconfig = Path("/fake/kubeconfig")

    def __call__(self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str:
        if args[:2] == ("get", "namespace"):
            return f"namespace/{args[2]}" if args[2] in self.namespaces else ""
        if args[:2] == ("get", "--raw") and args[2].endswith("/nodes"):
            return json.dumps({"items": [{"metadata": {"name": "node-1"}, "usage": {"memory": "3Gi"}}]})
        if args[:2] == ("get", "--raw"):
            return json.dumps({"items": USAGE})
        raise AssertionError(args)

    def json(self, *args: str) -> Any:
        if args[:2] == ("get", "pods"):
            return {"items": PODS}
        if args[:2] == ("get", "nodes"):
            return {"items": [{"metadata": {"name": "node-1"}, "status": {"allocatable": {"memory": "12Gi"}}}]}
        raise AssertionError(args)


def test_the_row_prints_a_table_the_namespace_total_and_each_node() -> None:
    lines = cluster_memory.report("prod", lambda: FakeCluster({"prod"}))
    assert "| StatefulSet/kafka | 2 | 500-700 | 1024 | 4096 | 0.68 |" in lines
    assert "prod: 1.20 GiB used, 2.41 GiB requested" in lines
    assert lines[-1] == "nodes, GiB used / allocatable: node-1 3.00/12.00"


@pytest.mark.parametrize(
    ("cluster", "said"),
    [(lambda: None, "skipped: no cluster"), (lambda: FakeCluster(set()), "skipped: no such namespace")],
)
def test_without_a_cluster_or_a_stack_the_row_says_skipped(cluster: Any, said: str) -> None:
    (line,) = cluster_memory.report("prod", cluster)
    assert said in line


def test_the_row_runs_from_the_bench_and_says_skipped_without_a_cluster(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AI_INFRA_CLUSTER_STATE", str(tmp_path))
    assert deploy.local_cluster() is None
    assert bench.main(["--runs", "1", "--rows", "memory"]) == 0
    assert "memory of ai-infra-prod: skipped: no cluster" in capsys.readouterr().out
