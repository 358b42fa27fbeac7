"""The real tier: the dev stack deployed by `make up STACK=dev` on the local cluster.

The package deploys it (tools/stack.sh up dev: the local cluster, the project's images,
the real engine) unless it already runs, and then works on what the guide's users see:
pods, the guide's kubectl commands, the stack outputs, the NetworkPolicies, backups.
The stack is left deployed, as `make up` leaves it; `make down` / `make cluster-down`
remove it. CI runs it after `make up STACK=dev`, so nothing is deployed twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.kube import Cluster
from tools.cluster import layout
from tools.cluster.layout import ClusterState

STACK = "dev"
UP_TIMEOUT = 2400


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


def stack_tool(*args: str, timeout: float = UP_TIMEOUT, check: bool = True, env: dict[str, str] | None = None) -> str:
    """tools/stack.sh, as `make up` runs it; its output (stdout and stderr) returned."""
    result = subprocess.run(
        ["bash", "tools/stack.sh", *args],
        cwd=layout.REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"tools/stack.sh {' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


@dataclass
class Deployed:
    cluster: Cluster
    namespace: str
    outputs: dict[str, Any]
    up_log: str  # what the `pulumi up` of this session printed ("" when it was up already)

    def pods(self) -> list[dict[str, Any]]:
        return self.cluster.get("-n", self.namespace, "pods")["items"]

    def exec(self, target: str, command: str, *, container: str | None = None, timeout: float = 120) -> tuple[int, str]:
        args = [str(self.cluster.state / "bin" / "kubectl"), f"--kubeconfig={self.cluster.state / 'kubeconfig'}"]
        args += ["-n", self.namespace, "exec", target, *(["-c", container] if container else []), "--", "sh", "-c", command]
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        return result.returncode, result.stdout + result.stderr


def _outputs() -> dict[str, Any]:
    """The stack's outputs, secrets shown; empty when the stack is not deployed."""
    result = subprocess.run(
        ["bash", "tools/stack.sh", "pulumi", STACK, "stack", "output", "--json", "--show-secrets"],
        cwd=layout.REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        outputs = json.loads(result.stdout) if result.returncode == 0 else {}
    except ValueError:
        return {}
    return outputs if isinstance(outputs, dict) else {}


@pytest.fixture(scope="package")
def deployed() -> Iterator[Deployed]:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the local cluster needs Linux and root")
    state = layout.state_dir()
    running = ClusterState.load(state)
    outputs = _outputs() if running else {}
    up_log = ""
    # `make down` leaves the last outputs (and the protected generators) in the stack:
    # deployed means its StatefulSets run.
    namespace = outputs.get("namespace")
    if not (running and namespace and Cluster(state, running).get("-n", namespace, "statefulsets")["items"]):
        up_log = stack_tool("up", STACK)
        outputs = _outputs()
    info = ClusterState.load(state)
    assert info is not None and outputs.get("namespace"), f"the dev stack is not deployed:\n{up_log[-4000:]}"
    yield Deployed(Cluster(state, info), outputs["namespace"], outputs, up_log)
