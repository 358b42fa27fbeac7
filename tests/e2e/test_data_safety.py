"""No config change destroys or stops a data system by surprise, shown with the real engine.

One prod stack is brought up in render mode; then, for a representative change of every
key of the config reference and every credential (tests/e2e/data_safety_changes.py),
`pulumi preview --json` must either plan no replacement or deletion of a StatefulSet, a
PersistentVolumeClaim, a Secret or the Namespace (a deletion Pulumi only forgets, a
retained backup claim, is no deletion), or fail with the refusal of the lock, or the
settings rule, that names the key. Changes that must plan safely are previewed in batches
of one config section (a batch that plans safely means each of its changes does; a failed
batch is previewed change by change to name the culprit); refusals and changes that remove
objects are previewed alone. Each preview has a copy of the stack file of its own, so
they run side by side.

Render mode is what this tier can run: the provider's diff (replace or update, delete
before replace) is the same as against a cluster; what the API server then does (a dry
run of a replacement, a claim resize) is for the real tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settings import SECRET_KEYS
from tests.e2e.conftest import Project, provider_manifests
from tests.e2e.data_safety_changes import (
    NOT_IN_RENDER_MODE,
    STACK,
    Previewed,
    changes,
    config_copy,
    config_text,
    judge,
    previewed,
)
from tools.config_reference import config_rows

pytestmark = pytest.mark.e2e


def _stack_file(project: Project) -> Path:
    return project.root / f"Pulumi.{STACK}.yaml"


def _preview(project: Project, values: dict[str, Any], *, secrets: frozenset[str] = frozenset()) -> Previewed:
    """Preview ``values`` over the deployed config, in a copy of the stack file made for
    this preview (previews run side by side; the stack file stays as it is)."""
    with config_copy(_stack_file(project)) as copy:
        arguments = []
        for key, value in values.items():
            kind = "--secret" if key in secrets else "--plaintext"
            arguments += [kind, f"ai-infra-matrix:{key}={config_text(value)}"]
        project.run("config", "set-all", "--path", *arguments, "--stack", STACK, "--config-file", str(copy))
        result = project.run("preview", "--stack", STACK, "--json", "--config-file", str(copy), check=False,
                             env=project.render_env(STACK))  # fmt: skip
    return previewed(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def deployed(project: Project) -> Project:
    project.deployed(STACK)
    return project


def test_no_config_change_replaces_or_deletes_a_data_object_by_surprise(deployed: Project):
    every = changes()
    failures, refused = judge(lambda values, secrets: _preview(deployed, values, secrets=secrets), every)

    # Every key of the config reference and every credential had its change.
    covered = {change.key for change in every} | set(NOT_IN_RENDER_MODE)
    assert covered == {key for key, _ in config_rows()} | set(SECRET_KEYS)
    print("\nrefused changes (key: refusal):")
    for key, by in sorted(refused.items()):
        print(f"  {key}: {by}")
    assert not failures, "\n\n".join(failures)


def test_the_cluster_keys_change_nothing_in_render_mode(deployed: Project):
    """The keys the main test does not preview: render mode replaces the kubernetes block."""
    for key in NOT_IN_RENDER_MODE:
        result = _preview(deployed, {key: "other"})
        assert result.returncode == 0, result.output[-3000:]
        assert result.steps == [], f"{key}: {result.steps}"


def test_a_planned_volume_growth_replaces_the_statefulset_with_its_pods_kept_and_grows_each_claim(deployed: Project):
    """The override path, through the engine: `up` replaces the Patroni StatefulSet (its
    state carries the orphan deletion policy the provider deletes with) and writes one
    claim patch per member; unsetting the override and re-applying leaves no change."""
    original = _stack_file(deployed).read_text()
    grow = {"dataSafety.allowVolumeClaimChange": True, "patroni.persistence.size": "50Gi"}
    try:
        plan = _preview(deployed, grow)
        assert plan.returncode == 0, plan.output[-3000:]
        assert [step for step in plan.unsafe if "StatefulSet" in step] == ["replace StatefulSet postgres-statefulset"]
        state = json.loads(deployed.run("stack", "export", "--stack", STACK).stdout)["deployment"]["resources"]
        old = next(r for r in state if r["urn"].endswith("::postgres-statefulset"))
        assert old["inputs"]["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == "orphan"

        arguments = [
            part for key, value in grow.items() for part in ("--plaintext", f"ai-infra-matrix:{key}={config_text(value)}")
        ]
        deployed.run("config", "set-all", "--path", *arguments, "--stack", STACK)
        deployed.run("up", "--yes", "--stack", STACK, env=deployed.render_env(STACK))
        written = provider_manifests(deployed.render_root / STACK)
        template = written[("StatefulSet", "ai-infra-patroni")]["spec"]["volumeClaimTemplates"][0]
        assert template["spec"]["resources"]["requests"]["storage"] == "50Gi"
        for ordinal in range(3):
            claim = written[("PersistentVolumeClaim", f"pgdata-ai-infra-patroni-{ordinal}")]
            assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
        # Back to the deployed size through the same planned path, then the override off.
        deployed.run("config", "set", "--path", "ai-infra-matrix:patroni.persistence.size", "20Gi", "--stack", STACK)
        deployed.run("up", "--yes", "--stack", STACK, env=deployed.render_env(STACK))
    finally:
        _stack_file(deployed).write_text(original)
    deployed.run("up", "--yes", "--stack", STACK, env=deployed.render_env(STACK))
    deployed.run("preview", "--stack", STACK, "--expect-no-changes", env=deployed.render_env(STACK))


def test_a_planned_password_rotation_updates_the_secret_in_place_and_rolls_the_members(deployed: Project):
    rotation = {"postgresPassword": "rotated-postgres-0123456789", "dataSafety.allowCredentialChange": True}
    plan = _preview(deployed, rotation, secrets=frozenset({"postgresPassword"}))
    assert plan.returncode == 0, plan.output[-3000:]
    assert plan.unsafe == []
    assert "update postgres-secret" in plan.steps
    assert "update postgres-statefulset" in plan.steps  # the credentials checksum rolls the members
    assert "rotated-postgres-0123456789" not in plan.output
