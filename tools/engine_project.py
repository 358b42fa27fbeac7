"""A copy of the project with a backend of its own, where the real Pulumi engine runs away
from the work tree: the e2e tests and `make bench` both start from here.

The copy holds what the program needs (state, renders and caches stay behind), a local
file backend, a throwaway passphrase, a PULUMI_HOME of its own and no plugin downloads or
update checks. KUBECONFIG points at a file that does not exist, so the provider never
finds a cluster by accident; a caller that means to deploy sets one explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from settings.stack_file import portable_document

ROOT = Path(__file__).resolve().parents[1]

# What the copy of the project needs. The stack files are copied as a fresh clone has them
# (stack_file.portable_document): a salt or an encrypted value the user's own backend
# wrote into them would not open in this backend.
STACK_FILES = ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]
PROJECT_FILES = [
    "Pulumi.yaml",
    "__main__.py",
    "platform_stack.py",
    "platform_flows.py",
    "platform_monitoring.py",
    "requirements.txt",
    "settings",
    "components",
    "examples",
]
PASSPHRASE = "engine-project-passphrase"  # guards nothing: the backend is thrown away


class ToolchainMissing(RuntimeError):
    """tools/toolchain.sh could not provide the Pulumi CLI; the message says why."""


def toolchain_bin() -> Path:
    """The directory of the pinned Pulumi CLI and plugins (built once, then cached)."""
    result = subprocess.run(
        ["bash", str(ROOT / "tools/toolchain.sh"), "--print-bin"], capture_output=True, text=True, timeout=5400, check=False
    )
    if result.returncode != 0:
        raise ToolchainMissing(f"the Pulumi toolchain is not available (run `make toolchain`):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def engine_env(base: Path, bin_dir: Path) -> dict[str, str]:
    """The environment for `pulumi` with its backend and home under ``base``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "AI_INFRA_RENDER")) and key != "KUBECONFIG"
    }
    return env | {
        "PATH": f"{bin_dir}{os.pathsep}{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_BACKEND_URL": f"file://{base / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_HOME": str(base / "pulumi-home"),
        "KUBECONFIG": str(base / "no-such-kubeconfig"),
    }


def copy_project(base: Path, bin_dir: Path | None = None) -> tuple[Path, dict[str, str]]:
    """Copy the project to ``base``/project with an empty backend beside it; return the
    copy's root and the environment to run `pulumi` in it."""
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
    return root, engine_env(base, bin_dir or toolchain_bin())
