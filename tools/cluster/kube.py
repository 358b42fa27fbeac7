"""kubectl against the local cluster, with the admin kubeconfig `up` writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tools.cluster.util import ClusterError, run


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str:
        result = run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            check=check,
            input_text=input_text,
            timeout=timeout,
        )
        return result.stdout

    def ok(self, *args: str, timeout: float = 10) -> bool:
        try:
            completed = subprocess.run(
                [str(self.binary), f"--kubeconfig={self.kubeconfig}", f"--request-timeout={int(timeout)}s", *args],
                capture_output=True,
                timeout=timeout + 5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return completed.returncode == 0

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, objects: list[dict[str, Any]]) -> None:
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        try:
            self(
                "apply", "--server-side", "--force-conflicts", "--field-manager=ai-infra-cluster", "-f", "-", input_text=document
            )
        except ClusterError as exc:
            raise ClusterError(f"applying the cluster add-ons failed: {exc}") from exc
