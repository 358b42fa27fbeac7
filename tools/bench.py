#!/usr/bin/env python3
"""`make bench`: what users wait on, each as a ratio to the floor it cannot beat, as a
Markdown table.

    preview  `pulumi preview --stack prod` on a fresh stack, real engine, no cluster
             vs the same engine previewing a one-Namespace program with the same provider
    render   `tools/render.py --stack prod` vs `python -c "import pulumi, pulumi_kubernetes"`
    preview-objects, render-objects
             the same commands vs the objects floor (tools/benchmark/replay.py): the
             render's own objects registered flat, by the engine or under the render's
             mocks; what is left over is the program's own cost
    deploy   `pulumi up --stack S` until every pod is Ready on the local cluster vs
             `kubectl apply --server-side` of the same rendered objects + the same wait,
             each in a fresh namespace (skipped when tools/cluster runs no cluster)
    memory   not a pair: a deployed stack's memory use per workload (metrics-server)
             beside its requests and limits, and each node's use
             (tools/benchmark/cluster_memory.py; skipped with no cluster or no stack)

Each row: one untimed warm-up of both sides, then --runs pairs run in turns (A B A B ...);
times are median (min-max) and each ratio is one program run over the floor run beside it.
Peak RSS is the largest process of the command's tree (wait4); for preview also per program.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.benchmark import cluster_memory, deploy, measure, replay  # noqa: E402
from tools.benchmark.measure import Command, Pairs, Sample, Spread  # noqa: E402
from tools.benchmark.preview import PreviewBench  # noqa: E402
from tools.cluster import stack_defaults  # noqa: E402

IMPORT_FLOOR = "import pulumi, pulumi_kubernetes"
COUNT = """
import json, sys
sys.path.insert(0, {root!r})
from tools.render import render
r = render({stack!r})
print(json.dumps({{"objects": len(r.objects), "resources": sum(r.resource_types.values())}}))
"""
ROWS = ("preview", "preview-objects", "render", "render-objects", "deploy", "memory")


@dataclass(frozen=True)
class Row:
    figure: str
    goal: str
    pairs: Pairs | None  # None: skipped
    why_skipped: str = ""


def preview_rows(base: Path, runs: int, wanted: Sequence[str], objects: Callable[[], list[dict[str, Any]]]) -> list[Row]:
    bench = PreviewBench(base, objects() if "preview-objects" in wanted else None)
    rows = []
    if "preview" in wanted:
        pairs = measure.interleave(lambda: measure.run(bench.program()), lambda: measure.run(bench.floor()), runs)
        rows.append(Row("`pulumi preview --stack prod`, fresh stack, vs the engine previewing one Namespace", "<= 1.5x", pairs))
    if "preview-objects" in wanted:
        pairs = measure.interleave(lambda: measure.run(bench.program()), lambda: measure.run(bench.objects_floor()), runs)
        rows.append(Row("the same preview vs the engine previewing the render's objects, registered flat", "-", pairs))
    return rows


def render_rows(base: Path, runs: int, wanted: Sequence[str], objects: Callable[[], list[dict[str, Any]]]) -> list[Row]:
    render = Command([sys.executable, "tools/render.py", "--stack", "prod", "--out", str(base / "render")], ROOT)
    rows = []
    if "render" in wanted:
        floor = Command([sys.executable, "-c", IMPORT_FLOOR], ROOT)
        pairs = measure.interleave(lambda: measure.run(render), lambda: measure.run(floor), runs)
        rows.append(Row(f'`tools/render.py --stack prod` vs `python -c "{IMPORT_FLOOR}"`', "<= 2x", pairs))
    if "render-objects" in wanted:
        listed = replay.objects_file(objects(), base / "objects.json")
        floor = Command([sys.executable, "-m", "tools.benchmark.replay", str(listed)], ROOT)
        pairs = measure.interleave(lambda: measure.run(render), lambda: measure.run(floor), runs)
        rows.append(Row("the same render vs its objects registered flat under the same mocks", "-", pairs))
    return rows


def deploy_rows(
    base: Path,
    runs: int,
    stacks: Sequence[str],
    overrides: Sequence[str],
    cluster: Callable[[], deploy.Kubectl | None],
    *,
    event_logs: Path | None = None,
) -> list[Row]:
    kubectl = cluster()
    rows = []
    for stack in stacks:
        figure = f"`pulumi up --stack {stack}` to every pod Ready vs `kubectl apply --server-side` + the same wait"
        if kubectl is None:
            rows.append(Row(figure, "<= 1.2x", None, "skipped: no cluster"))
            continue
        # the local cluster's own defaults (its registry, the stand-in app), as make up gives them
        target = stack_defaults.local_cluster_overrides()
        bench = deploy.DeployBench(base / f"deploy-{stack}", kubectl, stack, [*target, *overrides], event_logs=event_logs)
        # No warm-up: each run is a full deploy, and none of them starts warm.
        rows.append(Row(figure, "<= 1.2x", measure.interleave(bench.program, bench.floor, runs, warmup=False)))
    return rows


def _prod_objects() -> Callable[[], list[dict[str, Any]]]:
    """The prod render's objects, rendered on first use (in this process: not timed)."""
    cache: list[list[dict[str, Any]]] = []

    def objects() -> list[dict[str, Any]]:
        if not cache:
            from tools.render import render

            cache.append(render("prod").objects)
        return cache[0]

    return objects


def _spread(spread: Spread, unit: str = "") -> str:
    return f"{spread.median:.2f}{unit} ({spread.low:.2f}-{spread.high:.2f})"


def _mib(samples: Sequence[Sample]) -> str:
    peak = max(sample.peak_rss_kib for sample in samples)
    return f"{peak / 1024:.0f}" if peak else "-"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| figure | this program, s | floor, s | ratio, pair by pair | goal | peak RSS MiB, program / floor |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.pairs is None:
            lines.append(f"| {row.figure} | {row.why_skipped} | | | {row.goal} | |")
            continue
        program = Spread.of(sample.seconds for sample in row.pairs.program)
        floor = Spread.of(sample.seconds for sample in row.pairs.floor)
        memory = f"{_mib(row.pairs.program)} / {_mib(row.pairs.floor)}"
        ratio = _spread(Spread.of(row.pairs.ratios), "x")
        lines.append(f"| {row.figure} | {_spread(program)} | {_spread(floor)} | {ratio} | {row.goal} | {memory} |")
    return lines


def per_program_memory(row: Row) -> str:
    """The preview's peak RSS per program of the engine's process tree."""
    assert row.pairs is not None
    program: dict[str, int] = {}
    floor: dict[str, int] = {}
    for peaks, samples in ((program, row.pairs.program), (floor, row.pairs.floor)):
        for sample in samples:
            for name, kib in sample.programs.items():
                peaks[name] = max(peaks.get(name, 0), kib)
    names = sorted(set(program) | set(floor), key=lambda name: -program.get(name, 0))
    parts = [f"{name} {program.get(name, 0) / 1024:.0f} / {floor.get(name, 0) / 1024:.0f}" for name in names]
    return f"peak RSS per program, MiB, program / floor ({row.figure.split(' vs ')[-1]}): " + ", ".join(parts)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def counts(stack: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", COUNT.format(root=str(ROOT), stack=stack)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    found = json.loads(result.stdout)
    return f"{stack}: {found['objects']} Kubernetes objects, {found['resources']} Pulumi resources"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="pairs per row (default 5)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--deploy-stacks", default="dev,prod", help="stacks the deploy row deploys (default dev,prod)")
    parser.add_argument(
        "--deploy-set", action="append", default=[], metavar="KEY=VALUE", help="config for both sides of the deploy row"
    )
    parser.add_argument(
        "--memory-namespace", default="ai-infra-prod", help="the deployed stack the memory row reads (default ai-infra-prod)"
    )
    parser.add_argument(
        "--event-logs", type=Path, metavar="DIR", help="keep each deploy row `pulumi up`'s engine events (--event-log) in DIR"
    )
    args = parser.parse_args(argv)
    wanted = args.rows.split(",")
    unknown = set(wanted) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    # The commands run as Python runs by default, caching bytecode: the warm-up writes the
    # cache, as a user's first run does. With PYTHONDONTWRITEBYTECODE the project's own
    # modules would be compiled from source on every run, and the floors' never are.
    bytecode_note = "; PYTHONDONTWRITEBYTECODE unset for the commands" if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) else ""
    before = load()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        base = Path(scratch)
        objects = _prod_objects()
        if {"preview", "preview-objects"} & set(wanted):
            rows += preview_rows(base / "preview", args.runs, wanted, objects)
        if {"render", "render-objects"} & set(wanted):
            rows += render_rows(base, args.runs, wanted, objects)
        if "deploy" in wanted:
            stacks = args.deploy_stacks.split(",")
            rows += deploy_rows(base, args.runs, stacks, args.deploy_set, deploy.local_cluster, event_logs=args.event_logs)
    print(
        f"machine: {os.cpu_count()} cores, load average {before} before, {load()} after; "
        f"{args.runs} pairs per row, in turns{bytecode_note}"
    )
    print()
    print("\n".join(table(rows)))
    print()
    for row in rows:
        if row.pairs is not None and any(sample.programs for sample in row.pairs.program):
            print(per_program_memory(row))
    print("; ".join(counts(stack) for stack in ("dev", "prod")))
    if "memory" in wanted:
        print()
        print("\n".join(cluster_memory.report(args.memory_namespace, deploy.local_cluster)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
