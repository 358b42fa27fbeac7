"""The real Pulumi engine runs the program: preview for dev and prod, `up` in render mode
equal to the offline render, idempotence, the pull-request diff of one config change,
outputs and secrets, config errors, a consuming project, destroy.

The tests share one copy of the project and one backend (the module's ``project``), and
each one brings the stacks to the state it needs first, so they pass in any order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from platform_stack import OUTPUTS, SECRET_OUTPUTS
from tests.conftest import ROOT, render_stack
from tests.e2e.conftest import Project, comparable, differences, provider_manifests

pytestmark = pytest.mark.e2e


def test_preview_succeeds_for_dev_and_prod_on_a_fresh_backend(fresh_project: Project):
    for stack in ("dev", "prod"):
        fresh_project.stack(stack)
        result = fresh_project.run("preview", "--stack", stack, "--diff")
        assert "error" not in result.stderr.lower(), result.stderr


def test_up_dev_in_render_mode_writes_what_the_offline_render_shows(project: Project):
    project.deployed("dev")
    written = provider_manifests(project.render_root / "dev")
    expected = {(obj["kind"], obj["metadata"]["name"]): obj for obj in render_stack("dev").objects}
    assert written.keys() == expected.keys()
    for key, obj in expected.items():
        found = list(differences(comparable(written[key]), comparable(obj)))
        assert not found, f"{key} differs between the engine and tools/render.py: {found}"


def test_a_second_up_changes_nothing(project: Project):
    project.deployed("dev")
    project.run("preview", "--stack", "dev", "--expect-no-changes", env=project.render_env("dev"))
    result = project.run("up", "--yes", "--stack", "dev", "--expect-no-changes", env=project.render_env("dev"))
    assert "unchanged" in result.stdout


def test_one_config_change_previews_as_an_update_of_exactly_that_hpa(project: Project):
    project.deployed("prod")
    project.run("config", "set", "--path", "ai-infra-matrix:backend.autoscaling.maxReplicas", "12", "--stack", "prod")
    try:
        preview = project.json("preview", "--stack", "prod", env=project.render_env("prod"))
    finally:
        project.run("config", "rm", "--path", "ai-infra-matrix:backend.autoscaling.maxReplicas", "--stack", "prod")
    changed = [(step["op"], step["urn"].rsplit("::", 1)[1]) for step in preview["steps"] if step["op"] != "same"]
    assert changed == [("update", "backend-hpa")], changed
    step = next(step for step in preview["steps"] if step["op"] == "update")
    assert step["newState"]["inputs"]["spec"]["maxReplicas"] == 12
    assert "HorizontalPodAutoscaler" in step["urn"]


def test_stack_outputs_are_the_contract_with_secrets_hidden(project: Project):
    project.deployed("dev")
    hidden = project.json("stack", "output", "--stack", "dev")
    assert set(hidden) == set(OUTPUTS)
    for key in SECRET_OUTPUTS:
        assert hidden[key] == "[secret]"
    shown = project.json("stack", "output", "--stack", "dev", "--show-secrets")
    for key in SECRET_OUTPUTS:
        assert shown[key] not in ("", "[secret]")
    assert shown["namespace"] == "ai-infra"
    assert shown["backendHost"] == "ai-infra-backend.ai-infra.svc.cluster.local"


def test_an_invalid_config_fails_preview_with_the_render_message(project: Project):
    project.stack("dev")
    key = "ai-infra-matrix:backend.autoscaling.minReplicas"
    project.run("config", "set", "--path", key, "12", "--stack", "dev")
    try:
        result = project.run("preview", "--stack", "dev", check=False, env=project.render_env("dev"))
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


def test_a_consuming_project_reads_the_outputs(project: Project):
    project.deployed("dev")
    consumer = project.root / "examples" / "consumer"
    if project.run("stack", "select", "dev", cwd=consumer, check=False).returncode != 0:
        project.run("stack", "init", "dev", cwd=consumer)
    result = project.run("preview", "--stack", "dev", "--diff", cwd=consumer)
    assert "http://ai-infra-backend.ai-infra.svc.cluster.local:8082" in result.stdout
    assert "ai-infra-kafka.ai-infra.svc.cluster.local:9092" in result.stdout
    assert "databaseUrl" in result.stdout
    assert "postgresql://" not in result.stdout, "the database URL carries the password: it must stay secret"


def test_destroy_of_the_rendered_dev_stack_keeps_the_namespace_and_backup_volumes(project: Project):
    project.deployed("dev")
    # A plain destroy is refused: it would drop the generated credentials and cluster ID
    # the retained volumes were written with. make destroy excludes the protected ones.
    refused = project.run("destroy", "--yes", "--stack", "dev", env=project.render_env("dev"), check=False)
    assert refused.returncode != 0 and "protect" in refused.stdout + refused.stderr, refused.stdout[-2000:]
    project.run("destroy", "--yes", "--exclude-protected", "--stack", "dev", env=project.render_env("dev"))
    kept = json.loads(project.run("stack", "export", "--stack", "dev").stdout)["deployment"]["resources"]
    kept_types = {r["type"] for r in kept if r.get("protect")}
    assert kept_types == {"random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId"}, kept_types
    # What the protected ones' parents depend on stays with them: the namespace (retained
    # anyway) and its default deny, which guards whatever runs there next.
    kept_objects = {
        r["urn"].split("::")[-1] for r in kept if r["type"].startswith("kubernetes:") and "providers" not in r["type"]
    }
    assert all(name == "namespace" or name.startswith("network-isolation-") for name in kept_objects), kept_objects
    # The namespace and the backup volumes are retained on delete: the data in them (and
    # the StatefulSets' claims, which Kubernetes keeps) survives a destroy.
    left = sorted(provider_manifests(project.render_root / "dev"))
    assert [item for item in left if item[0] != "NetworkPolicy"] == [
        ("Namespace", "ai-infra"),
        ("PersistentVolumeClaim", "ai-infra-backup-postgres"),
        ("PersistentVolumeClaim", "ai-infra-backup-redis"),
    ]
    assert len([item for item in left if item[0] == "NetworkPolicy"]) == len(kept_objects) - 1
    assert not project.workloads("dev"), "the destroy left workloads in the state"


def test_every_workload_waits_for_the_namespaces_default_deny(project: Project):
    """From the engine's own state: a pod can only be created once the namespace denies
    by default, whatever fails later in the same `pulumi up`."""
    project.deployed("prod")
    resources = json.loads(project.run("stack", "export", "--stack", "prod").stdout)["deployment"]["resources"]
    by_urn = {r["urn"]: r for r in resources}
    children: dict[str, list[str]] = {}
    for resource in resources:
        if resource.get("parent"):
            children.setdefault(resource["parent"], []).append(resource["urn"])

    def reaches(urn: str, target: str, seen: set[str]) -> bool:
        if urn in seen:
            return False
        seen.add(urn)
        resource = by_urn[urn]
        ancestors = [resource.get("parent")] if resource.get("parent") else []
        for dependency in [*resource.get("dependencies", []), *ancestors]:
            if dependency.endswith(target) or any(c.endswith(target) for c in children.get(dependency, [])):
                return True
            if dependency in by_urn and reaches(dependency, target, seen):
                return True
        return False

    workloads = [r["urn"] for r in resources if r["type"].split(":")[-1] in ("StatefulSet", "Deployment", "Job", "CronJob")]
    assert workloads
    unprotected = [
        urn.rsplit("::", 1)[1] for urn in workloads if not reaches(urn, "::network-isolation-ai-infra-default-deny", set())
    ]
    assert not unprotected, f"created without waiting for the default deny: {unprotected}"


def test_up_refuses_project_images_that_no_registry_serves(project: Project):
    """Against a real cluster (no render directory), before any resource is registered;
    a preview of the same stack only warns."""
    project.stack("dev")
    preview = project.run("preview", "--stack", "dev", check=False)
    assert preview.returncode == 0, preview.stdout[-2000:]
    assert "ai-infra-matrix:imageRegistry: is empty" in preview.stdout + preview.stderr
    refused = project.run("up", "--yes", "--stack", "dev", check=False)
    assert refused.returncode != 0
    assert "ai-infra-matrix:imageRegistry: is empty, so patroni.image (ai-infra-patroni:4.1.5-pg15)" in refused.stdout
    assert "make images-push REGISTRY=" in refused.stdout
