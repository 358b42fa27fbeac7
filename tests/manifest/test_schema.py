"""Every rendered object validates strictly (unknown fields are errors) against the
Kubernetes OpenAPI schema of the oldest supported minor and of the newest one
kubernetes-validate ships."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from tests.conftest import render_stack

OLDEST_SUPPORTED = "1.30.0"
VERSIONS = [OLDEST_SUPPORTED, latest_version()]
# Prometheus Operator CRDs are not part of the Kubernetes schema.
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_validates_strictly(stack, version):
    errors = []
    objects = render_stack(stack).objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {error.message} at {list(error.path)}")
    assert not errors, "\n".join(errors)
    assert len(objects) > 5


def test_an_invalid_object_is_caught():
    """The validator used above does reject what Kubernetes would reject."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imag": "typo"}]}}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, OLDEST_SUPPORTED, strict=True)
