"""Composition: namespace, outputs contract, determinism of the offline render."""

from __future__ import annotations

import subprocess
import sys

import pytest

from platform_stack import OUTPUTS, SECRET_OUTPUTS
from tests.conftest import ROOT, Objects, render_stack
from tools.render import MASK

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize(("stack", "namespace"), [("dev", "ai-infra"), ("prod", "ai-infra-prod")])
def test_namespace_per_stack_enforces_restricted_pod_security(stack, namespace):
    rendered = Objects(render_stack(stack).objects)
    ns = rendered.get("Namespace", namespace)
    for mode in ("enforce", "audit", "warn"):
        assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for obj in rendered.all:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]


def test_namespace_is_the_first_object():
    assert render_stack("dev").objects[0]["kind"] == "Namespace"


def test_outputs_are_exactly_the_documented_contract(stack):
    rendered = render_stack(stack)
    assert set(rendered.outputs) == set(OUTPUTS)
    assert rendered.secret_outputs == SECRET_OUTPUTS
    for key in OUTPUTS:
        assert key[0].islower() and key.isalnum(), f"output {key!r} is not flat camelCase"
    for key in SECRET_OUTPUTS:
        assert rendered.outputs[key] == MASK


def test_outputs_describe_the_guides_names():
    outputs = render_stack("prod").outputs
    assert outputs["namespace"] == "ai-infra-prod"
    assert outputs["backendHost"] == "ai-infra-backend.ai-infra-prod.svc.cluster.local"
    assert outputs["backendPort"] == 8082
    assert outputs["nginxServiceType"] == "LoadBalancer"


def test_no_secret_value_appears_outside_secrets(stack):
    rendered = render_stack(stack)
    secret_values = {
        value
        for obj in rendered.objects
        if obj["kind"] == "Secret"
        for value in {**obj.get("stringData", {}), **obj.get("data", {})}.values()
        if len(str(value)) >= 16
    }
    assert secret_values
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = repr(obj)
        for value in secret_values:
            assert value not in text, f"a secret value leaks into {obj['kind']} {obj['metadata']['name']}"
    for value in rendered.outputs.values():
        assert value not in secret_values


def test_render_twice_is_byte_identical(tmp_path):
    for attempt in ("a", "b"):
        subprocess.run(
            [sys.executable, str(ROOT / "tools/render.py"), "--stack", "prod", "--out", str(tmp_path / attempt)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    for name in ("manifests.yaml", "outputs.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_disabled_parts_keep_every_output_key_empty_and_secrets_secret():
    disabled = ("patroni", "redisCluster", "kafka", "backend", "frontend", "nginx")
    rendered = render_stack("dev", *(f"{part}.enabled=false" for part in disabled))
    assert set(rendered.outputs) == set(OUTPUTS)
    assert rendered.secret_outputs == SECRET_OUTPUTS
    assert rendered.outputs["postgresPrimaryHost"] == ""
    assert rendered.outputs["postgresPort"] == 0
    assert rendered.outputs["backendHost"] == ""
    assert rendered.outputs["kafkaBootstrapServers"] == ""


@pytest.mark.parametrize(("stack", "overrides"), [("dev", ()), ("prod", ("nginx.service.type=LoadBalancer",))])
def test_no_service_holds_an_engine_step_waiting_for_its_endpoints(stack, overrides):
    # The provider's Service await ends 10 s after the endpoints last changed, pods or not:
    # with 4 engine steps per core, the first systems' Services delayed the next systems.
    services = [obj for obj in render_stack(stack, *overrides).objects if obj["kind"] == "Service"]
    assert len(services) >= 8
    for service in services:
        assert service["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", service["metadata"]["name"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_failed_job_says_why_in_its_pods_status(stack):
    # A Job's attempts restart in one pod (OnFailure): without the log fallback, the reason
    # of the attempt before was gone, and `pulumi up` printed only "exit code 1".
    jobs = [obj for obj in render_stack(stack).objects if obj["kind"] == "Job"]
    assert jobs
    for job in jobs:
        for container in job["spec"]["template"]["spec"]["containers"]:
            assert container["terminationMessagePolicy"] == "FallbackToLogsOnError", job["metadata"]["name"]
