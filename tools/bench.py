#!/usr/bin/env python3
"""`make bench`: wall time of the offline render for dev and prod, beside the floor
every render pays (importing pulumi and pulumi_kubernetes), and the resource counts.

Each figure is the median of several runs in a fresh interpreter, as a user (or CI)
pays it. Printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = "import pulumi, pulumi_kubernetes"
# pulumi_kubernetes loads its API groups lazily; these are the ones the program touches.
API_FLOOR = (
    "import pulumi, pulumi_random, pulumi_kubernetes as k; "
    "k.core.v1, k.apps.v1, k.autoscaling.v2, k.policy.v1, k.rbac.v1, k.batch.v1"
)
COUNT = """
import json, sys
sys.path.insert(0, {root!r})
from tools.render import render
r = render({stack!r})
print(json.dumps({{"objects": len(r.objects), "resources": sum(r.resource_types.values()), "types": r.resource_types}}))
"""


def wall(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, timeout=600)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    rows = [
        ("bare `import pulumi, pulumi_kubernetes` (floor)", wall([python, "-c", FLOOR], args.runs), "", ""),
        ("import + the API groups the program uses", wall([python, "-c", API_FLOOR], args.runs), "", ""),
    ]
    with tempfile.TemporaryDirectory() as out:
        for stack in ("dev", "prod"):
            times = wall([python, "tools/render.py", "--stack", stack, "--out", f"{out}/{stack}"], args.runs)
            counted = subprocess.run(
                [python, "-c", COUNT.format(root=str(ROOT), stack=stack)], check=True, capture_output=True, text=True, cwd=ROOT
            )
            counts = json.loads(counted.stdout)
            rows.append((f"render {stack}", times, str(counts["objects"]), str(counts["resources"])))
    print(f"| what | median wall time (s, {args.runs} runs) | min | max | Kubernetes objects | Pulumi resources |")
    print("|---|---|---|---|---|---|")
    for name, times, objects, resources in rows:
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} | {objects} | {resources} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
