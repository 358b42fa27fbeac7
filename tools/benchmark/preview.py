"""The preview row: `pulumi preview --stack prod` of the program on a fresh stack, beside
the same engine previewing a one-Namespace program with the same provider.

Both run as the e2e tests run the engine (tools/engine_project.py): a copy of the project,
a local file backend of its own, no cluster (the provider previews an unreachable cluster
by returning the inputs). A preview writes no state, so every run previews the same
empty stack: each one is a preview of a fresh stack.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

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
FLOOR_STACK_FILE = {"config": {"pulumi:disable-default-providers": ["kubernetes"]}}


class PreviewBench:
    """Two prepared projects under ``base``; ``program()`` and ``floor()`` are the
    commands to time."""

    def __init__(self, base: Path) -> None:
        bin_dir = engine_project.toolchain_bin()
        self.project, self.project_env = engine_project.copy_project(base / "program", bin_dir)
        self.floor_root = _floor_project(base / "floor")
        self.floor_env = engine_project.engine_env(base / "floor", bin_dir)
        (base / "floor" / "backend").mkdir()
        for root, env in ((self.project, self.project_env), (self.floor_root, self.floor_env)):
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


def _preview(root: Path, env: dict[str, str]) -> Command:
    return Command(["pulumi", "preview", "--stack", STACK, "--non-interactive"], root, env, watch_tree=True)


def _floor_project(base: Path) -> Path:
    root = base / "project"
    root.mkdir(parents=True)
    project = yaml.safe_load((engine_project.ROOT / "Pulumi.yaml").read_text())
    # The project's own runtime block: the same virtualenv and toolchain options.
    floor = {"name": "bench-floor", "runtime": project["runtime"]}
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(floor, sort_keys=False))
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(FLOOR_STACK_FILE, sort_keys=False))
    (root / "__main__.py").write_text(FLOOR_PROGRAM)
    (root / ".venv").symlink_to(engine_project.ROOT / ".venv")
    return root
