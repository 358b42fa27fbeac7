"""The cluster tier: tests against the real local cluster (tools/cluster), 3 nodes.

The tier's cluster is the one running (grown to 3 nodes if smaller), or, in CI, one this
package starts after a snapshot of the host, and takes down after its last test, then
compares the host with the snapshot: a difference fails the tier at teardown (`cluster up`
+ `cluster down` must leave the host as it was).
Every test works in a namespace of its own, deleted afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import host
from tools.cluster import images, layout
from tools.cluster.layout import ClusterState

NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@dataclass
class Cluster:
    state: Path
    info: ClusterState
    host_before: dict[str, Any] | None = None  # set when this session started the cluster

    def kubectl(self, *args: str, input_text: str | None = None, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.state / "bin" / "kubectl"), f"--kubeconfig={self.state / 'kubeconfig'}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout + (result.stderr if not check else "")

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, namespace: str, *objects: dict[str, Any]) -> None:
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        self.kubectl("-n", namespace, "apply", "-f", "-", input_text=document)

    def nodes(self) -> list[dict[str, Any]]:
        return self.get("nodes")["items"]

    def wait(self, what: str, probe: Callable[[], bool], timeout: float = 120, interval: float = 1) -> float:
        start = time.monotonic()
        last_error = ""
        while time.monotonic() - start < timeout:
            try:
                if probe():
                    return time.monotonic() - start
            except (AssertionError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as exc:
                last_error = str(exc)[-500:]
            time.sleep(interval)
        raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}{': ' + last_error if last_error else ''}")


def _cluster_tool(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tools.cluster", *args], cwd=layout.REPO, check=True, timeout=3600)


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the local cluster needs Linux and root")
    state = layout.state_dir()
    running = ClusterState.load(state)
    owned = running is None
    before = host.snapshot() if owned else None
    if running is None or running.nodes < NODES:
        _cluster_tool("up", "--nodes", str(NODES))
    info = ClusterState.load(state)
    assert info is not None, "cluster up wrote no state"
    yield Cluster(state, info, before)
    if owned and before is not None:
        _cluster_tool("down")
        problems = host.differences(before, host.snapshot())
        assert not problems, "cluster up + down changed the host:\n" + "\n".join(problems)


@pytest.fixture(scope="package")
def host_before(cluster: Cluster) -> dict[str, Any]:
    """The host snapshot from before this session's `cluster up` (skips when it did not start it)."""
    if cluster.host_before is None:
        pytest.skip("the cluster was started outside this session, so there is no snapshot from before it")
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


def pod_ready(cluster: Cluster, namespace: str, name: str) -> bool:
    pod = cluster.get("-n", namespace, "pod", name)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def pod_exec(cluster: Cluster, namespace: str, pod: str, command: str, timeout: float = 30) -> tuple[int, str]:
    result = subprocess.run(
        [str(cluster.state / "bin" / "kubectl"), f"--kubeconfig={cluster.state / 'kubeconfig'}", "-n", namespace,
         "exec", pod, "--", "sh", "-c", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr
