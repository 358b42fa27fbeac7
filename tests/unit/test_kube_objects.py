"""components/kube_objects.py registers what pulumi_kubernetes' typed classes register:
the engine cannot tell them apart, so a stack deployed with one previews no change with
the other. And the program never imports the typed API modules it replaces."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import json_format
from pulumi.runtime import mocks

from components import kube_objects as kube
from tests.conftest import ROOT


class _Recorder(mocks.MockMonitor):
    """The mock monitor, keeping every RegisterResource request as the engine gets it."""

    def __init__(self) -> None:
        super().__init__(_Echo())
        self.requests: list[Any] = []

    def RegisterResource(self, request: Any) -> Any:
        self.requests.append(request)
        return super().RegisterResource(request)


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        return {}, []


def _registrations(build: Callable[[], dict[str, pulumi.Output]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``build`` under mocks; its resources' requests (as JSON, without the source
    position: the two calls sit on different lines) and the resolved outputs it returns."""
    recorder = _Recorder()
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(_Echo(), project="p", stack="s", preview=False, monitor=recorder)
    resolved: dict[str, Any] = {}

    async def collect(outputs: dict[str, pulumi.Output]) -> None:
        for key, output in outputs.items():
            resolved[key] = (await output.future(), await output.is_secret())

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        return pulumi.Output.from_input(asyncio.ensure_future(collect(build())))

    try:
        program()
    finally:
        asyncio.get_event_loop().close()
        pulumi.runtime.settings.reset_options()
    requests = []
    for request in recorder.requests:
        if request.type.startswith("kubernetes:"):
            request.ClearField("sourcePosition")
            request.ClearField("stackTrace")
            requests.append(json_format.MessageToDict(request))
    return requests, resolved


META = {"name": "web", "namespace": "ns", "labels": {"app.kubernetes.io/name": "web"}}
SPEC = {"selector": {"matchLabels": {"app": "web"}}, "replicas": 2, "serviceName": "web-headless"}
# Every class of components/kube_objects.py, with the SDK class it stands for and fields
# like the program's (an Output among them, so dependencies are compared too).
CASES: list[tuple[type[kube.KubeObject], Any, dict[str, Any]]] = [
    (kube.Namespace, k8s.core.v1.Namespace, {"metadata": {"name": "ns"}}),
    (kube.ServiceAccount, k8s.core.v1.ServiceAccount, {"metadata": META, "automount_service_account_token": False}),
    (kube.Secret, k8s.core.v1.Secret, {"metadata": META, "type": "Opaque", "string_data": {"password": "hunter2"}}),
    (kube.Secret, k8s.core.v1.Secret, {"metadata": META, "data": {"key": "aGk="}, "immutable": True}),
    (kube.ConfigMap, k8s.core.v1.ConfigMap, {"metadata": META, "data": {"run.sh": "#!/bin/sh\n"}}),
    (kube.Service, k8s.core.v1.Service, {"metadata": META, "spec": {"ports": [{"port": 80}], "clusterIP": "None"}}),
    (kube.PersistentVolumeClaim, k8s.core.v1.PersistentVolumeClaim, {"metadata": META, "spec": {"accessModes": ["RWO"]}}),
    (
        kube.PersistentVolumeClaimPatch,
        k8s.core.v1.PersistentVolumeClaimPatch,
        {"metadata": META, "spec": {"resources": {"requests": {"storage": "50Gi"}}}},
    ),
    (kube.StatefulSet, k8s.apps.v1.StatefulSet, {"metadata": META, "spec": SPEC}),
    (kube.Deployment, k8s.apps.v1.Deployment, {"metadata": META, "spec": SPEC}),
    (kube.Job, k8s.batch.v1.Job, {"metadata": META, "spec": {"backoffLimit": 3}}),
    (kube.CronJob, k8s.batch.v1.CronJob, {"metadata": META, "spec": {"schedule": "0 2 * * *"}}),
    (kube.HorizontalPodAutoscaler, k8s.autoscaling.v2.HorizontalPodAutoscaler, {"metadata": META, "spec": {"maxReplicas": 5}}),
    (kube.PodDisruptionBudget, k8s.policy.v1.PodDisruptionBudget, {"metadata": META, "spec": {"maxUnavailable": 1}}),
    (kube.Role, k8s.rbac.v1.Role, {"metadata": META, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    (
        kube.RoleBinding,
        k8s.rbac.v1.RoleBinding,
        {"metadata": META, "role_ref": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "a"}]},
    ),
    (kube.NetworkPolicy, k8s.networking.v1.NetworkPolicy, {"metadata": META, "spec": {"podSelector": {}}}),
]


@pytest.mark.parametrize(("ours", "sdk", "fields"), CASES, ids=[f"{case[1].__name__}-{i}" for i, case in enumerate(CASES)])
def test_each_object_registers_exactly_what_the_sdk_class_registers(ours, sdk, fields):
    def build(cls: Any, config_map: Any) -> Callable[[], dict[str, pulumi.Output]]:
        def program() -> dict[str, pulumi.Output]:
            provider = k8s.Provider("k8s", namespace="ns")
            # A dependency through an Output, as the components wire a Secret's name.
            upstream = config_map("upstream", metadata={"name": "up"}, opts=pulumi.ResourceOptions(provider=provider))
            labelled = {**fields.get("metadata", {}), "annotations": {"upstream": _name(upstream)}}
            made = cls("object", **{**fields, "metadata": labelled}, opts=pulumi.ResourceOptions(provider=provider, protect=True))
            return {"name": _name(made), "first": made.metadata.apply(lambda meta: sorted(meta)[0])}

        return program

    sdk_requests, sdk_outputs = _registrations(build(sdk, k8s.core.v1.ConfigMap))
    our_requests, our_outputs = _registrations(build(ours, kube.ConfigMap))
    assert our_requests == sdk_requests
    assert our_requests[-1]["type"] == ours._kind.token
    assert our_outputs == sdk_outputs


def _name(resource: Any) -> pulumi.Output[str]:
    """metadata.name of either class: a dict from ours, an ObjectMeta from the SDK's."""
    return resource.metadata.apply(lambda meta: meta["name"] if isinstance(meta, dict) else meta.name)


def test_every_class_stands_for_an_sdk_class_under_test():
    classes = {cls for cls in vars(kube).values() if isinstance(cls, type) and issubclass(cls, kube.KubeObject)}
    assert classes - {kube.KubeObject} == {case[0] for case in CASES}


def test_secret_values_stay_secret_in_outputs():
    def program() -> dict[str, pulumi.Output]:
        secret = kube.Secret("s", metadata={"name": "s"}, string_data={"password": "hunter2"})
        return {"data": vars(secret)["stringData"], "name": secret.metadata["name"]}  # outputs keep camelCase

    _, outputs = _registrations(program)
    assert outputs["data"] == ({"password": "hunter2"}, True)
    assert outputs["name"] == ("s", False)


@pytest.mark.parametrize("overrides", [[], ["monitoring.enabled=true"]])
def test_the_render_imports_no_typed_kubernetes_api_group(overrides):
    probe = (
        "import json, sys; sys.path.insert(0, '.');"
        f"from tools.render import render; render('prod', {overrides!r});"
        "print(json.dumps(sorted(m for m in sys.modules if m.endswith(('._inputs', '.outputs')))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)
    typed = {name.rsplit(".", 1)[0] for name in json.loads(result.stdout) if name.startswith("pulumi_kubernetes.")}
    # The provider's own config types (pulumi_kubernetes._inputs) are small and needed; the
    # Prometheus Operator objects are the SDK's apiextensions.CustomResource, which reads
    # meta/v1 (0.01 s) for its metadata type.
    assert typed <= {"pulumi_kubernetes", "pulumi_kubernetes.meta.v1"}, typed
