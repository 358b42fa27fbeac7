"""The real engine and Kubernetes provider with monitoring.enabled: the Prometheus
Operator objects (CustomResources) and dashboard ConfigMaps the provider writes in render
mode are the ones tools/render.py shows."""

from __future__ import annotations

import pytest

from tests.conftest import render_stack
from tests.e2e.conftest import Project, comparable, differences, provider_manifests

pytestmark = pytest.mark.e2e

MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


def test_up_dev_with_monitoring_writes_the_rendered_monitoring_objects(fresh_project: Project):
    fresh_project.stack("dev")
    fresh_project.run("config", "set", "--path", "monitoring.enabled", "true", "--stack", "dev")
    result = fresh_project.run("up", "--yes", "--stack", "dev", env=fresh_project.render_env("dev"))
    assert "error" not in result.stderr.lower(), result.stderr
    written = provider_manifests(fresh_project.render_root / "dev")
    expected = {(obj["kind"], obj["metadata"]["name"]): obj for obj in render_stack("dev", "monitoring.enabled=true").objects}
    assert written.keys() == expected.keys()
    monitoring = [key for key in expected if key[0] in MONITORING_KINDS or key[1].endswith("-dashboard")]
    assert {kind for kind, _ in monitoring} == MONITORING_KINDS | {"ConfigMap"}
    for key in monitoring:
        found = list(differences(comparable(written[key]), comparable(expected[key])))
        assert not found, f"{key} differs between the engine and tools/render.py: {found}"
