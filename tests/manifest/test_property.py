"""Property: every config the settings accept renders, and every object it renders
validates strictly against the Kubernetes schema and keeps the HPA/PDB invariants."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settings import SettingsError, load_settings
from tests.conftest import Objects
from tools.render import evaluate

dns_label = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@st.composite
def app_config(draw: st.DrawFn, production: bool) -> dict[str, Any]:
    floor = 2 if production else 1
    minimum = draw(st.integers(floor, 6))
    cpu_request = draw(st.integers(10, 2000))
    memory_request = draw(st.integers(16, 4096))
    port = draw(st.integers(1, 65535))
    config: dict[str, Any] = {
        "replicaCount": draw(st.integers(floor, 6)),
        "autoscaling": {
            "enabled": draw(st.booleans()),
            "minReplicas": minimum,
            "maxReplicas": draw(st.integers(minimum, minimum + 20)),
            "targetCPUUtilizationPercentage": draw(st.integers(1, 100)),
            "targetMemoryUtilizationPercentage": draw(st.one_of(st.none(), st.integers(1, 100))),
        },
        "resources": {
            "requests": {"cpu": f"{cpu_request}m", "memory": f"{memory_request}Mi"},
            "limits": {
                "cpu": f"{cpu_request + draw(st.integers(0, 2000))}m",
                "memory": f"{memory_request + draw(st.integers(0, 4096))}Mi",
            },
        },
        "service": {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"])),
            "port": port,
            "targetPort": draw(st.integers(1, 65535)),
        },
        "env": draw(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=20), max_size=3)),
    }
    return config


@st.composite
def platform_config(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    stack = draw(st.sampled_from(["dev", "prod"]))
    production = stack == "prod"
    config: dict[str, Any] = {
        "releaseName": draw(dns_label),
        "namespace": draw(dns_label),
        "imagePullSecrets": draw(st.lists(dns_label, max_size=2, unique=True)),
    }
    for app in ("backend", "frontend", "nginx"):
        if draw(st.booleans()):
            config[app] = draw(app_config(production))
    return stack, config


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platform_config())
def test_valid_configs_always_render_and_validate(case):
    stack, config = case
    try:
        platform = load_settings(config, stack=stack)
    except SettingsError as error:
        # The generator keeps to the documented rules; a refusal here is a rule the
        # README does not state, which the property should surface.
        raise AssertionError("\n".join(error.lines())) from None
    result = evaluate(platform, stack)
    rendered = Objects(result.objects)
    for obj in rendered.all:
        if obj["kind"] in ("ServiceMonitor", "PrometheusRule", "PodMonitor"):
            continue
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert rendered.get("Deployment", target)["spec"]["replicas"] == hpa["spec"]["minReplicas"]
        assert result.ignore_changes[("Deployment", target)] == ("spec.replicas",)
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        assert pdb["spec"]["maxUnavailable"] >= 1
