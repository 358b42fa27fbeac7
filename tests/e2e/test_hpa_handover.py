"""The real engine turns a Deployment's HPA on and off across `pulumi up`s (render mode).

What the engine decides is shown here: the inputs of every update. With the HPA on,
ignore_changes keeps the previous spec.replicas in every update (the one that turns the
HPA on included), so the apply never carries a new count; turning it off sets
replicaCount again, with the provider's force annotation. What the API server then does
with those applies (field ownership moving to the HPA controller, the provider leaving
out a field another manager owns) needs a real cluster: see the README's "Autoscaling"
notes and the real-cluster check listed there."""

from __future__ import annotations

from typing import Any

import pytest

from components.autoscaled_app import PATCH_FORCE
from tests.e2e.conftest import Project, provider_manifests

pytestmark = pytest.mark.e2e

STACK = "dev"
KEY = "ai-infra-matrix:backend"


def configure(project: Project, **values: str) -> None:
    for path, value in values.items():
        project.run("config", "set", "--path", f"{KEY}.{path}", value, "--stack", STACK)


def up(project: Project) -> dict[tuple[str, str], dict[str, Any]]:
    project.run("up", "--yes", "--stack", STACK, env=project.render_env(STACK))
    return provider_manifests(project.render_root / STACK)


def deployment_update(project: Project) -> dict[str, Any] | None:
    """The preview's step for the backend Deployment, None when it is unchanged."""
    preview = project.json("preview", "--stack", STACK, env=project.render_env(STACK))
    # The JSON preview lists a resource it leaves unchanged as "same", or not at all.
    steps = [step for step in preview["steps"] if step["urn"].endswith("::backend-deployment") and step["op"] != "same"]
    assert len(steps) <= 1, steps
    return steps[0] if steps else None


def test_turning_the_hpa_on_and_off_never_sends_another_replica_count(fresh_project: Project):
    project = fresh_project
    project.stack(STACK)
    configure(project, replicaCount="3")
    written = up(project)
    backend = written[("Deployment", "ai-infra-backend")]
    assert backend["spec"]["replicas"] == 3
    assert backend["metadata"]["annotations"][PATCH_FORCE] == "true"

    # On: the update keeps 3 (not minReplicas 2, and never a missing field).
    configure(project, **{"autoscaling.enabled": "true", "autoscaling.minReplicas": "2", "autoscaling.maxReplicas": "6"})
    step = deployment_update(project)
    assert step is not None and step["op"] == "update", step  # the force annotation goes
    assert step["newState"]["inputs"]["spec"]["replicas"] == 3
    written = up(project)
    backend = written[("Deployment", "ai-infra-backend")]
    assert backend["spec"]["replicas"] == 3
    assert PATCH_FORCE not in backend["metadata"].get("annotations", {})
    assert written[("HorizontalPodAutoscaler", "ai-infra-backend-hpa")]["spec"]["minReplicas"] == 2

    # Later ups: a new floor is the HPA's business; a template change keeps the count.
    configure(project, **{"autoscaling.minReplicas": "4"})
    assert deployment_update(project) is None
    configure(project, **{"env.HPA_HANDOVER_PROBE": "1"})
    step = deployment_update(project)
    assert step is not None and step["op"] == "update", step
    assert step["newState"]["inputs"]["spec"]["replicas"] == 3
    assert up(project)[("Deployment", "ai-infra-backend")]["spec"]["replicas"] == 3
    project.run("preview", "--stack", STACK, "--expect-no-changes", env=project.render_env(STACK))

    # Off: the program's count again, forced, and no HPA left.
    configure(project, **{"autoscaling.enabled": "false", "replicaCount": "5"})
    step = deployment_update(project)
    assert step is not None and step["newState"]["inputs"]["spec"]["replicas"] == 5
    written = up(project)
    backend = written[("Deployment", "ai-infra-backend")]
    assert backend["spec"]["replicas"] == 5
    assert backend["metadata"]["annotations"][PATCH_FORCE] == "true"
    assert ("HorizontalPodAutoscaler", "ai-infra-backend-hpa") not in written
