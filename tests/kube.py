"""Talking to the local cluster from tests (the cluster and real tiers): kubectl with the
admin kubeconfig `cluster up` writes, bounded waits, pod exec."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.cluster import layout
from tools.cluster.layout import ClusterState


@dataclass
class Cluster:
    state: Path
    info: ClusterState
    host_before: dict[str, Any] | None = None  # the host as `cluster up` found it

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


def cluster_tool(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tools.cluster", *args], cwd=layout.REPO, check=True, timeout=3600)


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
