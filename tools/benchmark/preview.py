"""The preview rows: `pulumi preview --stack prod` of the program on a fresh stack, beside
the same engine previewing a one-Namespace program with the same provider (the floor of
any program), and beside it previewing the render's own objects registered flat
(tools/benchmark/replay.py: the floor of any program that manages these objects).

Both run as the e2e tests run the engine (tools/engine_project.py): a copy of the project,
a local file backend of its own, no cluster (the provider previews an unreachable cluster
by returning the inputs). A preview writes no state, so every run previews the same
empty stack: each one is a preview of a fresh stack.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tools import engine_project
from tools.benchmark.measure import Command

STACK = "prod"
# The floor: the least a program of this project can preview. Same engine, language host,
# virtualenv, provider and stack config (the default provider disabled, as in the stack
# files); one object instead of the platform.
FLOOR_PROGRAM = """\
import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("kubernetes", namespace="bench-floor")
k8s.core.v1.Namespace("namespace", metadata={"name": "bench-floor"}, opts=pulumi.ResourceOptions(provider=provider))
"""
# The objects floor: the render's objects, flat, with the same provider.
OBJECTS_PROGRAM = """\
import sys
from pathlib import Path

sys.path.insert(0, {root!r})
from tools.benchmark.replay import program

program(Path({objects!r}))
"""
FLOOR_STACK_FILE = {"config": {"pulumi:disable-default-providers": ["kubernetes"]}}


class PreviewBench:
    """Prepared projects under ``base``; ``program()``, ``floor()`` and ``objects_floor()``
    are the commands to time. ``objects`` (the render's objects of the same stack) adds the
    objects floor."""

    def __init__(self, base: Path, objects: Sequence[dict[str, Any]] | None = None) -> None:
        bin_dir = engine_project.toolchain_bin()
        self.project, self.project_env = engine_project.copy_project(base / "program", bin_dir)
        self.floor_root, self.floor_env = _floor_project(base / "floor", bin_dir, FLOOR_PROGRAM)
        projects = [(self.project, self.project_env), (self.floor_root, self.floor_env)]
        self.objects_root: Path | None = None
        if objects is not None:
            from tools.benchmark import replay

            listed = replay.objects_file(objects, base / "objects.json")
            text = OBJECTS_PROGRAM.format(root=str(engine_project.ROOT), objects=str(listed))
            self.objects_root, self.objects_env = _floor_project(base / "objects", bin_dir, text)
            projects.append((self.objects_root, self.objects_env))
        for root, env in projects:
            subprocess.run(
                ["pulumi", "stack", "init", STACK, "--non-interactive"],
                cwd=root,
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )

    def program(self) -> Command:
        return _preview(self.project, self.project_env)

    def floor(self) -> Command:
        return _preview(self.floor_root, self.floor_env)

    def objects_floor(self) -> Command:
        if self.objects_root is None:
            raise ValueError("PreviewBench was prepared without the render's objects")
        return _preview(self.objects_root, self.objects_env)


def _preview(root: Path, env: dict[str, str]) -> Command:
    return Command(["pulumi", "preview", "--stack", STACK, "--non-interactive"], root, env, watch_tree=True)


def _floor_project(base: Path, bin_dir: Path, program: str) -> tuple[Path, dict[str, str]]:
    """A project of ``program`` beside the program's copy: its own backend, the project's
    runtime block (the same virtualenv and toolchain options) and stack config."""
    root = base / "project"
    root.mkdir(parents=True)
    project = yaml.safe_load((engine_project.ROOT / "Pulumi.yaml").read_text())
    floor = {"name": "bench-floor", "runtime": project["runtime"]}
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(floor, sort_keys=False))
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(FLOOR_STACK_FILE, sort_keys=False))
    (root / "__main__.py").write_text(program)
    (root / ".venv").symlink_to(engine_project.ROOT / ".venv")
    (base / "backend").mkdir()
    return root, engine_project.engine_env(base, bin_dir)
