"""A stack deployed for real into the local cluster, as `make up STACK=...` deploys it:
the harness of the real (dev) and prod tiers.

``deployed_stack`` starts (or grows) the local cluster, runs tools/stack.sh up unless the
stack already runs, and returns what the tests work on: the cluster, the namespace, the
stack's outputs and the `pulumi up` log of this session ("" when it ran already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from tests.kube import Cluster
from tools.cluster import layout
from tools.cluster.layout import ClusterState

UP_TIMEOUT = 2400


def stack_run(*args: str, timeout: float = UP_TIMEOUT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """tools/stack.sh, as `make up` runs it."""
    return subprocess.run(
        ["bash", "tools/stack.sh", *args],
        cwd=layout.REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def stack_tool(*args: str, timeout: float = UP_TIMEOUT, check: bool = True, env: dict[str, str] | None = None) -> str:
    """tools/stack.sh, as `make up` runs it; its output (stdout and stderr) returned."""
    result = stack_run(*args, timeout=timeout, env=env)
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"tools/stack.sh {' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


@dataclass
class Deployed:
    cluster: Cluster
    stack: str
    namespace: str
    outputs: dict[str, Any]
    up_log: str  # what the `pulumi up` of this session printed ("" when it was up already)

    def pods(self, *selector: str) -> list[dict[str, Any]]:
        return self.cluster.get("-n", self.namespace, "pods", *selector)["items"]

    def not_ready(self) -> list[str]:
        """What is not running as it should: pods not Ready (a Job's pods aside: a retried
        Job leaves failed pods behind) and the stack's own Jobs not succeeded (a backup
        CronJob's runs aside)."""
        problems = []
        for pod in self.pods():
            owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("kind")
            conditions = pod["status"].get("conditions", [])
            if owner != "Job" and not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                problems.append(f"pod {pod['metadata']['name']} is not Ready: {conditions}")
        for job in self.cluster.get("-n", self.namespace, "jobs")["items"]:
            if not job["metadata"].get("ownerReferences") and job["status"].get("succeeded", 0) < 1:
                problems.append(f"Job {job['metadata']['name']}: {job['status']}")
        return problems

    def exec(self, target: str, command: str, *, container: str | None = None, timeout: float = 120) -> tuple[int, str]:
        result = subprocess.run(
            self.exec_argv(target, command, container=container), capture_output=True, text=True, timeout=timeout, check=False
        )
        return result.returncode, result.stdout + result.stderr

    def exec_argv(self, target: str, command: str, *, container: str | None = None) -> list[str]:
        args = [str(self.cluster.state / "bin" / "kubectl"), f"--kubeconfig={self.cluster.state / 'kubeconfig'}"]
        return [*args, "-n", self.namespace, "exec", target, *(["-c", container] if container else []), "--", "sh", "-c", command]


def stack_outputs(stack: str) -> dict[str, Any]:
    """The stack's outputs, secrets shown; empty when the stack is not deployed."""
    result = subprocess.run(
        ["bash", "tools/stack.sh", "pulumi", stack, "stack", "output", "--json", "--show-secrets"],
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


def deployed_stack(stack: str, nodes: int = 1) -> Deployed:
    """``stack`` running on a local cluster of at least ``nodes`` nodes (skips where the
    local cluster cannot run)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the local cluster needs Linux and root")
    state = layout.state_dir()
    running = ClusterState.load(state)
    if running and running.nodes < nodes:
        subprocess.run([sys.executable, "-m", "tools.cluster", "up", "--nodes", str(nodes), "--at-least"],
                       cwd=layout.REPO, check=True, timeout=UP_TIMEOUT)  # fmt: skip
        running = ClusterState.load(state)
    outputs = stack_outputs(stack) if running else {}
    up_log = ""
    # `make down` leaves the last outputs (and the protected generators) in the stack:
    # deployed means its StatefulSets run.
    namespace = outputs.get("namespace")
    if not (running and namespace and Cluster(state, running).get("-n", namespace, "statefulsets")["items"]):
        up_log = stack_tool("up", stack, env={"NODES": str(nodes), "YES": "1"})
        outputs = stack_outputs(stack)
    info = ClusterState.load(state)
    assert info is not None and outputs.get("namespace"), f"the {stack} stack is not deployed:\n{up_log[-4000:]}"
    return Deployed(Cluster(state, info), stack, outputs["namespace"], outputs, up_log)
