"""The real Pulumi engine against a copy of the project: a fresh local file backend, the
toolchain from tools/toolchain.sh, no network. Every command is bounded in time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.k8s import CREDENTIALS_CHECKSUM
from components.postgres_ha import TEMPLATE_CHECKSUM as PATRONI_TEMPLATE_CHECKSUM
from settings import RENDER_DIR_ENV
from tools import engine_project

COMMAND_TIMEOUT = 600


def toolchain_bin() -> Path:
    try:
        return engine_project.toolchain_bin()
    except engine_project.ToolchainMissing as missing:
        pytest.fail(str(missing))


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

    def json(self, *args: str, **kwargs) -> Any:
        return json.loads(self.run(*args, "--json", **kwargs).stdout)

    @property
    def render_root(self) -> Path:
        return self.root.parent / "rendered"

    def render_env(self, stack: str) -> dict[str, str]:
        """Render mode: the provider writes the manifests under render_root/<stack>."""
        return {RENDER_DIR_ENV: str(self.render_root / stack)}

    def stack(self, name: str) -> None:
        """Create stack ``name`` in this project's backend unless it exists."""
        if self.run("stack", "select", name, check=False).returncode != 0:
            self.run("stack", "init", name)

    def deployed(self, stack: str) -> None:
        """Make sure ``stack`` is up in render mode, whatever ran before (a destroy
        included): a test that needs a deployed stack asks for it instead of relying
        on an earlier test."""
        self.stack(stack)
        if not self.workloads(stack):
            self.run("up", "--yes", "--stack", stack, env=self.render_env(stack))

    def workloads(self, stack: str) -> list[str]:
        """The URNs of the StatefulSets and Deployments in ``stack``'s state (a destroy
        leaves the protected generators and the last outputs, never a workload)."""
        resources = json.loads(self.run("stack", "export", "--stack", stack).stdout)["deployment"].get("resources") or []
        kinds = ("kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment")
        return [r["urn"] for r in resources if r["type"] in kinds]


def make_project(base: Path) -> Project:
    """A copy of the project with its own backend (tools/engine_project.py: the same copy
    `make bench` previews)."""
    root, env = engine_project.copy_project(base, toolchain_bin())
    return Project(root, env)


TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One copy of the project and one backend for a module's tests; each test brings the
    stacks it needs to the state it needs (Project.stack, Project.deployed)."""
    made = make_project(tmp_path_factory.mktemp("e2e"))
    yield made
    for command, seconds in made.timings.items():
        TIMINGS[command] = max(seconds, TIMINGS.get(command, 0.0))


@pytest.fixture
def fresh_project(tmp_path: Path) -> Project:
    """A copy with a backend of its own, for a test that must start from nothing."""
    return make_project(tmp_path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("e2e timings (slowest run of each pulumi command)")
        for command, seconds in sorted(TIMINGS.items()):
            terminalreporter.write_line(f"pulumi {command}: {seconds:.1f}s")


# --- comparing what the engine wrote with the offline render -----------------------------

# Fields the Kubernetes provider adds to what the program registered, in render mode.
# Only these are ignored when comparing with tools/render.py.
PROVIDER_ADDED_LABELS = {"app.kubernetes.io/managed-by"}
# Values derived from generated credentials: real random values in the engine, fixed
# stand-ins offline. Secret data is compared by key; these annotations by presence.
# (the Patroni roll Job's checksum of the StatefulSet's template covers its credentials checksum)
CREDENTIAL_CHECKSUM_ANNOTATIONS = {CREDENTIALS_CHECKSUM, PATRONI_TEMPLATE_CHECKSUM}


def provider_manifests(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(directory.rglob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                objects[(obj["kind"], obj["metadata"]["name"])] = obj
    return objects


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without what legitimately differs between the engine and the offline
    render: labels the provider adds, and Secret values (real random passwords in the
    engine, fixed stand-ins offline; their keys still compare)."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    labels = obj["metadata"].get("labels", {})
    for label in PROVIDER_ADDED_LABELS:
        labels.pop(label, None)
    template = obj.get("spec", {}).get("template", {}).get("metadata", {})
    for annotation in CREDENTIAL_CHECKSUM_ANNOTATIONS & set(template.get("annotations", {})):
        template["annotations"][annotation] = "<checksum>"
    if obj["kind"] == "Secret":
        for field_name in ("data", "stringData"):
            if field_name in obj:
                obj[field_name] = sorted(obj[field_name])
        values = obj.pop("data", []) + obj.pop("stringData", [])
        obj["keys"] = sorted(values)
    return obj


def differences(engine: Any, offline: Any, path: str = "") -> Iterator[str]:
    """Every place ``engine`` and ``offline`` differ, as ``path: engine != offline``."""
    if isinstance(engine, dict) and isinstance(offline, dict):
        for key in sorted(set(engine) | set(offline)):
            yield from differences(engine.get(key), offline.get(key), f"{path}.{key}")
    elif isinstance(engine, list) and isinstance(offline, list) and len(engine) == len(offline):
        for index, (left, right) in enumerate(zip(engine, offline, strict=True)):
            yield from differences(left, right, f"{path}[{index}]")
    elif engine != offline:
        yield f"{path}: engine {engine!r} != offline {offline!r}"
