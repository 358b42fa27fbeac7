"""The cluster tier: tests against the real local cluster (tools/cluster), 3 nodes.

The tier's cluster is the one running (grown to 3 nodes if smaller), or one this package
starts and takes down after its last test. `cluster up` records the host as it was before
(``.cluster/host-before.json``), and `cluster down` fails when the host is not as it was
after it: so a package that starts the cluster fails at teardown if the host changed.
Every test works in a namespace of its own, deleted afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube import Cluster, cluster_tool
from tools.cluster import images, layout
from tools.cluster.layout import ClusterState

NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the local cluster needs Linux and root")
    state = layout.state_dir()
    owned = ClusterState.load(state) is None
    cluster_tool("up", "--nodes", str(NODES), "--at-least")
    info = ClusterState.load(state)
    assert info is not None, "cluster up wrote no state"
    before = state / "host-before.json"
    yield Cluster(state, info, json.loads(before.read_text()) if before.exists() else None)
    if owned:
        cluster_tool("down")  # fails (and so does this teardown) when the host is not as it was


@pytest.fixture(scope="package")
def host_before(cluster: Cluster) -> dict[str, Any]:
    """The host as `cluster up` found it, before it created anything."""
    assert cluster.host_before is not None, "the running cluster recorded no host snapshot: restart it with make cluster-down"
    return cluster.host_before


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name.removeprefix('test_')[:40].replace('_', '-').lower().strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


TOOLBOX = images.TOOLBOX_REF


def toolbox_pod(name: str, *, command: str, node: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A busybox pod from the in-cluster registry, pinned to ``node`` when given."""
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": TOOLBOX, "command": ["sh", "-c", command]}],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}}, "spec": spec}
