"""The real Pulumi engine runs the program: preview for dev and prod, `up` in render mode
equal to the offline render, idempotence, the pull-request diff of one config change,
outputs and secrets, config errors, a consuming project, destroy.

Tests in this module run in order against one copy of the project and one backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.k8s import CREDENTIALS_CHECKSUM
from platform_stack import OUTPUTS, SECRET_OUTPUTS
from settings import RENDER_DIR_ENV
from tests.conftest import ROOT, render_stack

pytestmark = pytest.mark.e2e

# Fields the Kubernetes provider adds to what the program registered, in render mode.
# Only these are ignored when comparing with tools/render.py.
PROVIDER_ADDED_LABELS = {"app.kubernetes.io/managed-by"}
# Values derived from generated credentials: real random values in the engine, fixed
# stand-ins offline. Secret data is compared by key; these annotations by presence.
CREDENTIAL_CHECKSUM_ANNOTATIONS = {CREDENTIALS_CHECKSUM}


def render_dir(project) -> Path:
    return project.root.parent / "rendered"


def render_env(project, stack: str) -> dict[str, str]:
    return {RENDER_DIR_ENV: str(render_dir(project) / stack)}


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
        for field in ("data", "stringData"):
            if field in obj:
                obj[field] = sorted(obj[field])
        values = obj.pop("data", []) + obj.pop("stringData", [])
        obj["keys"] = sorted(values)
    return obj


def test_preview_succeeds_for_dev_and_prod_on_a_fresh_backend(project):
    for stack in ("dev", "prod"):
        project.run("stack", "init", stack)
        result = project.run("preview", "--stack", stack, "--diff")
        assert "error" not in result.stderr.lower(), result.stderr


def test_up_dev_in_render_mode_writes_what_the_offline_render_shows(project):
    result = project.run("up", "--yes", "--stack", "dev", env=render_env(project, "dev"))
    assert "error" not in result.stderr.lower(), result.stderr
    written = provider_manifests(render_dir(project) / "dev")
    expected = {(obj["kind"], obj["metadata"]["name"]): obj for obj in render_stack("dev").objects}
    assert written.keys() == expected.keys()
    for key, obj in expected.items():
        differences = list(_differences(comparable(written[key]), comparable(obj)))
        assert not differences, f"{key} differs between the engine and tools/render.py: {differences}"


def _differences(engine: Any, offline: Any, path: str = "") -> Any:
    if isinstance(engine, dict) and isinstance(offline, dict):
        for key in sorted(set(engine) | set(offline)):
            yield from _differences(engine.get(key), offline.get(key), f"{path}.{key}")
    elif isinstance(engine, list) and isinstance(offline, list) and len(engine) == len(offline):
        for index, (left, right) in enumerate(zip(engine, offline, strict=True)):
            yield from _differences(left, right, f"{path}[{index}]")
    elif engine != offline:
        yield f"{path}: engine {engine!r} != offline {offline!r}"


def test_a_second_up_changes_nothing(project):
    project.run("preview", "--stack", "dev", "--expect-no-changes", env=render_env(project, "dev"))
    result = project.run("up", "--yes", "--stack", "dev", "--expect-no-changes", env=render_env(project, "dev"))
    assert "unchanged" in result.stdout


def test_one_config_change_previews_as_an_update_of_exactly_that_hpa(project):
    project.run("up", "--yes", "--stack", "prod", env=render_env(project, "prod"))
    project.run("config", "set", "--path", "ai-infra-matrix:backend.autoscaling.maxReplicas", "12", "--stack", "prod")
    try:
        preview = project.json("preview", "--stack", "prod", env=render_env(project, "prod"))
    finally:
        project.run("config", "rm", "--path", "ai-infra-matrix:backend.autoscaling.maxReplicas", "--stack", "prod")
    changed = [(step["op"], step["urn"].rsplit("::", 1)[1]) for step in preview["steps"] if step["op"] != "same"]
    assert changed == [("update", "backend-hpa")], changed
    step = next(step for step in preview["steps"] if step["op"] == "update")
    assert step["newState"]["inputs"]["spec"]["maxReplicas"] == 12
    assert "HorizontalPodAutoscaler" in step["urn"]


def test_stack_outputs_are_the_contract_with_secrets_hidden(project):
    hidden = project.json("stack", "output", "--stack", "dev")
    assert set(hidden) == set(OUTPUTS)
    for key in SECRET_OUTPUTS:
        assert hidden[key] == "[secret]"
    shown = project.json("stack", "output", "--stack", "dev", "--show-secrets")
    for key in SECRET_OUTPUTS:
        assert shown[key] not in ("", "[secret]")
    assert shown["namespace"] == "ai-infra"
    assert shown["backendHost"] == "ai-infra-backend.ai-infra.svc.cluster.local"


def test_an_invalid_config_fails_preview_with_the_render_message(project):
    key = "ai-infra-matrix:backend.autoscaling.minReplicas"
    project.run("config", "set", "--path", key, "12", "--stack", "dev")
    try:
        result = project.run("preview", "--stack", "dev", check=False, env=render_env(project, "dev"))
    finally:
        project.run("config", "rm", "--path", key, "--stack", "dev")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # The same line tools/render.py prints for the same config.
    rendered = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/render.py"),
            "--stack",
            "dev",
            "--out",
            str(project.root / "x"),
            "--set",
            "backend.autoscaling.minReplicas=12",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in rendered.stderr.splitlines() if line.startswith("ai-infra-matrix:")]
    assert lines == [f"{key}: minReplicas (12) is greater than maxReplicas (1); set minReplicas <= maxReplicas"]
    assert lines[0] in output
    assert "Traceback" not in output


def test_a_consuming_project_reads_the_outputs(project):
    consumer = project.root / "examples" / "consumer"
    project.run("stack", "init", "dev", cwd=consumer)
    result = project.run("preview", "--stack", "dev", "--diff", cwd=consumer)
    assert "http://ai-infra-backend.ai-infra.svc.cluster.local:8082" in result.stdout
    assert "ai-infra-kafka.ai-infra.svc.cluster.local:9092" in result.stdout
    assert "databaseUrl" in result.stdout
    assert "postgresql://" not in result.stdout, "the database URL carries the password: it must stay secret"


def test_destroy_of_the_rendered_dev_stack_keeps_the_namespace_and_backup_volumes(project):
    project.run("destroy", "--yes", "--stack", "dev", env=render_env(project, "dev"))
    # The namespace and the backup volumes are retained on delete: the data in them (and
    # the StatefulSets' claims, which Kubernetes keeps) survives a destroy.
    assert sorted(provider_manifests(render_dir(project) / "dev")) == [
        ("Namespace", "ai-infra"),
        ("PersistentVolumeClaim", "ai-infra-backup-postgres"),
        ("PersistentVolumeClaim", "ai-infra-backup-redis"),
    ]
    assert project.json("stack", "output", "--stack", "dev") == {}
