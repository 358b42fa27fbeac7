"""The deploy row: `pulumi up` of a stack until every pod is Ready, beside the floor:
`kubectl apply --server-side` of the same rendered objects, then a wait for the same
readiness. Both on the local cluster (tools/cluster), each run in a fresh namespace that
is deleted, and waited for, before the next run starts.

Readiness is one rule for both sides, read from the cluster: every Deployment and
StatefulSet has all its replicas updated and ready, every Job the program made has
completed, and every pod not run by a Job is Ready. `pulumi up` awaits the same things
itself, so after it returns the check passes on its first look.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tools import engine_project
from tools.benchmark.measure import CommandFailed, Sample, timed

READY_TIMEOUT_SECONDS = 1800.0
POLL_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 1800.0


class Kubectl(Protocol):
    """What the row needs of kubectl (ClusterKubectl; a fake in the tests)."""

    @property
    def kubeconfig(self) -> Path: ...

    def __call__(self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str: ...

    def json(self, *args: str) -> Any: ...


@dataclass(frozen=True)
class ClusterKubectl:
    """kubectl with the local cluster's admin kubeconfig. Its own small runner, not
    tools.cluster.kube's: that one merges stderr into stdout, and a warning kubectl prints
    (admission, deprecation) would break the JSON the readiness rule reads."""

    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str:
        command = [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, input=input_text, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise CommandFailed(f"{' '.join(command)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}")
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def answers(self) -> bool:
        try:
            self("get", "--raw", "/readyz", "--request-timeout=10s", timeout=20)
        except (CommandFailed, subprocess.TimeoutExpired, OSError):
            return False
        return True


def local_cluster() -> Kubectl | None:
    """kubectl for the local cluster when it runs (its state file exists and the API
    server answers), else None."""
    from tools.cluster import layout

    state = layout.state_dir()
    if layout.ClusterState.load(state) is None:
        return None
    kubectl = ClusterKubectl(state / "bin" / "kubectl", state / "kubeconfig")
    return kubectl if kubectl.answers() else None


class JobFailed(RuntimeError):
    """A Job of the deployment failed: the run measures nothing."""


def not_ready(items: Sequence[dict[str, Any]]) -> list[str]:
    """What of a namespace's Deployments, StatefulSets, Jobs and pods is not ready yet,
    one ``Kind/name: why`` each; empty when everything is."""
    return [f"{item.get('kind')}/{item.get('metadata', {}).get('name', '?')}: {why}" for item in items if (why := _waiting(item))]


def _waiting(item: dict[str, Any]) -> str:
    """Why ``item`` is not ready, or "" when it is (or is not the deployment's to wait for)."""
    kind, meta = item.get("kind", ""), item.get("metadata", {})
    spec, status = item.get("spec", {}), item.get("status", {})
    owners = {owner.get("kind") for owner in meta.get("ownerReferences", [])}
    conditions = _conditions(status)
    if meta.get("deletionTimestamp"):
        return ""
    if kind in ("Deployment", "StatefulSet"):
        if status.get("observedGeneration", 0) < meta.get("generation", 0):
            return f"controller has not seen generation {meta.get('generation')}"
        wanted = spec.get("replicas", 1)
        ready = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas", 0)
        updated = status.get("updatedReplicas", 0)
        return f"{ready}/{wanted} ready, {updated}/{wanted} updated" if min(ready, updated) < wanted else ""
    if kind == "Job" and "CronJob" not in owners:  # a scheduled run is not the deployment's
        if conditions.get("Failed") == "True":
            raise JobFailed(f"Job/{meta.get('name')} failed")
        return "" if conditions.get("Complete") == "True" else "not complete"
    if kind == "Pod" and "Job" not in owners and status.get("phase") != "Succeeded":
        return "" if conditions.get("Ready") == "True" else f"not Ready ({status.get('phase', 'Pending')})"
    return ""


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {condition.get("type", ""): condition.get("status", "") for condition in status.get("conditions", [])}


def wait_ready(
    kubectl: Kubectl,
    namespace: str,
    *,
    timeout: float = READY_TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once ``namespace`` is ready (see not_ready); TimeoutError after ``timeout``."""
    start = clock()
    while True:
        pending = not_ready(kubectl.json("get", "deployments,statefulsets,jobs,pods", "-n", namespace)["items"])
        if not pending:
            return
        if clock() - start > timeout:
            raise TimeoutError(f"{namespace} not ready after {timeout:.0f} s: {'; '.join(pending[:10])}")
        sleep(poll)


class DeployBench:
    """``program()`` and ``floor()`` each deploy ``stack`` into a fresh namespace, return
    the time to ready, and delete the namespace again (not timed). ``overrides`` are
    ``KEY=VALUE`` config settings (scalars) for both sides, e.g. image references for the
    cluster's registry."""

    def __init__(
        self,
        base: Path,
        kubectl: Kubectl,
        stack: str,
        overrides: Sequence[str] = (),
        bin_dir: Path | None = None,
        *,
        event_logs: Path | None = None,
    ) -> None:
        self.base = base
        # Where each `pulumi up` writes its engine events (--event-log), one file per run:
        # when each resource started and ended, to find what the up waited on.
        self.event_logs = event_logs
        self.kubectl = kubectl
        self.stack = stack
        self.overrides = list(overrides)
        self.bin_dir = bin_dir or engine_project.toolchain_bin()
        self.tag = secrets.token_hex(3)  # no clash with a namespace an interrupted run left
        self.runs = 0

    def _namespace(self, side: str) -> str:
        self.runs += 1
        return f"bench-{self.stack}-{self.tag}-{self.runs}-{side}"

    def program(self) -> Sample:
        namespace = self._namespace("up")
        root, env = engine_project.copy_project(self.base / namespace, self.bin_dir)
        env["KUBECONFIG"] = str(self.kubectl.kubeconfig)

        def pulumi(*args: str) -> None:
            _check(["pulumi", *args, "--non-interactive"], root, env)

        pulumi("stack", "init", self.stack)
        for key, value in self._config(namespace):
            pulumi("config", "set", "--path", f"ai-infra-matrix:{key}", value, "--stack", self.stack)

        events: list[str] = []
        if self.event_logs is not None:
            self.event_logs.mkdir(parents=True, exist_ok=True)
            events = ["--event-log", str(self.event_logs / f"{namespace}.jsonl")]
            env["PULUMI_DEBUG_COMMANDS"] = "true"  # the CLI offers --event-log only then

        def deploy() -> None:
            pulumi("up", "--yes", "--stack", self.stack, *events)  # what `make up` runs, its preview included
            wait_ready(self.kubectl, namespace)

        try:
            return timed(deploy)
        finally:
            self._delete(namespace)

    def floor(self) -> Sample:
        namespace = self._namespace("apply")
        out = self.base / namespace
        sets = [item for key, value in self._config(namespace) for item in ("--set", f"{key}={value}")]
        _check([sys.executable, "tools/render.py", "--stack", self.stack, "--out", str(out), *sets], engine_project.ROOT, None)

        def deploy() -> None:
            self.kubectl("apply", "--server-side", "-f", str(out / "manifests.yaml"), timeout=COMMAND_TIMEOUT_SECONDS)
            wait_ready(self.kubectl, namespace)

        try:
            return timed(deploy)
        finally:
            self._delete(namespace)

    def _config(self, namespace: str) -> list[tuple[str, str]]:
        """The settings both sides get: the fresh namespace, the cluster, the overrides."""
        pairs = [("namespace", namespace), ("kubernetes.kubeconfig", str(self.kubectl.kubeconfig))]
        for item in self.overrides:
            key, separator, value = item.partition("=")
            if not separator:
                raise ValueError(f"override {item!r} is not KEY=VALUE")
            pairs.append((key, value))
        return pairs

    def _delete(self, namespace: str) -> None:
        # Waited for, so the next run does not share the machine with this one's teardown.
        self.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=COMMAND_TIMEOUT_SECONDS)


def _check(command: list[str], cwd: Path, env: dict[str, str] | None) -> None:
    """Run an untimed step; CommandFailed with the end of its output if it fails."""
    timeout = COMMAND_TIMEOUT_SECONDS
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise CommandFailed(f"{' '.join(command)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}")
