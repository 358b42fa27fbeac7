"""Changes to the deployed prod stack's config, applied by `pulumi up` under the drill
writers (the scaling and day-2 drills): setting and removing keys, the up itself, and one
table of what each change cost the writers."""

from __future__ import annotations

import time

from tests.conformance import report
from tests.deployed import stack_run
from tests.prod import drills
from tests.prod.conftest import STACK
from tools.cluster import layout

LOCAL_STACK_FILE = layout.REPO / ".pulumi-state" / "stacks" / f"Pulumi.{STACK}.yaml"
RESULTS: list[list[object]] = []


@report.summary
def _table() -> list[str]:
    if RESULTS:
        report.table(
            "Changes by pulumi up on the running prod stack, under writers (gap = longest interval between acknowledged writes)",
            ["change", "pulumi up s", "writer gap s", "lost/acked", "errors"],
            RESULTS,
        )
    return []


def set_key(key: str, value: int | bool | str) -> None:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    result = stack_run("pulumi", STACK, "config", "set", "--path", f"ai-infra-matrix:{key}", text)
    assert result.returncode == 0, result.stderr[-3000:]


def remove_key(key: str) -> None:
    result = stack_run("pulumi", STACK, "config", "rm", "--path", f"ai-infra-matrix:{key}")
    assert result.returncode == 0, result.stderr[-3000:]


def up() -> float:
    """`make up STACK=prod YES=1`; its seconds."""
    start = time.monotonic()
    result = stack_run("up", STACK, env={"YES": "1", "NODES": "7"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return time.monotonic() - start


def record(change: str, ups: list[float], writes: drills.Writes, fault: float) -> None:
    """One row of the table (and a measurement line): the writer must have outlived the
    last up, or part of the change went unwatched."""
    covered = writes.acks and writes.acks[-1] > fault + sum(ups)
    assert covered, f"the writer stopped before the last up ended ({change})"
    gap = writes.recovery_after(fault)
    RESULTS.append([change, " / ".join(f"{u:.1f}" for u in ups), gap, f"{writes.lost}/{writes.summary['acked']}",
                    len(writes.errors)])  # fmt: skip
    report.measurement("prod-change", change=change, up_s=ups, gap_s=gap, lost=writes.lost,
                       acked=writes.summary["acked"], errors=len(writes.errors))  # fmt: skip
