"""The real Pulumi engine against a copy of the project: a fresh local file backend, the
toolchain from tools/toolchain.sh, no network. Every command is bounded in time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from settings.stack_file import portable_document
from tests.conftest import ROOT

COMMAND_TIMEOUT = 600
# What the copy of the project needs; state, renders and caches stay behind. The stack
# files are copied as a fresh clone has them (stack_file.portable_document): a salt or an
# encrypted value the user's own backend wrote into them would not open in this backend.
STACK_FILES = ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]
PROJECT_FILES = [
    "Pulumi.yaml",
    "__main__.py",
    "platform_stack.py",
    "platform_flows.py",
    "requirements.txt",
    "settings",
    "components",
    "examples",
]


def toolchain_bin() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "tools/toolchain.sh"), "--print-bin"], capture_output=True, text=True, timeout=5400, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"the Pulumi toolchain is not available (run `make toolchain`):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class Project:
    """A copy of the project with its own backend; `run` calls pulumi in it."""

    root: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        start = time.perf_counter()
        result = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        self.timings[" ".join(args[:2])] = time.perf_counter() - start
        if check and result.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def json(self, *args: str, **kwargs) -> object:
        return json.loads(self.run(*args, "--json", **kwargs).stdout)


def make_project(base: Path) -> Project:
    root = base / "project"
    root.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    for name in STACK_FILES:
        (root / name).write_text(yaml.safe_dump(portable_document(ROOT / name), sort_keys=False))
    (root / ".venv").symlink_to(ROOT / ".venv")
    (base / "backend").mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "AI_INFRA_RENDER")) and key != "KUBECONFIG"
    }
    env |= {
        "PATH": f"{toolchain_bin()}{os.pathsep}{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_BACKEND_URL": f"file://{base / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": "e2e-test-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_HOME": str(base / "pulumi-home"),
        # No cluster anywhere: the provider must never find one by accident.
        "KUBECONFIG": str(base / "no-such-kubeconfig"),
    }
    return Project(root, env)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    made = make_project(tmp_path_factory.mktemp("e2e"))
    yield made
    for command, seconds in sorted(made.timings.items()):
        print(f"e2e timing: pulumi {command}: {seconds:.1f}s")
