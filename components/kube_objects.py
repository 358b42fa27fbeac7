"""The Kubernetes objects the program registers, as the provider's own resource types,
without importing pulumi_kubernetes' typed API modules.

Each API group of pulumi_kubernetes (``core.v1``, ``apps.v1``...) is one package that
imports an input and an output class for every Kubernetes type of the group: core/v1
alone is 4 MB of source. Importing the groups the program uses cost more than importing
pulumi itself, and every registration then resolved the typed outputs through
``typing.get_type_hints``, in ``make render``, in every test and in every preview. The
program writes its objects as plain dicts in Kubernetes' own camelCase anyway.

So each class here registers what the SDK class of the same name registers: the same
type token, the same inputs, the SDK's aliases for the kind's older API versions, its
secret inputs and outputs (Secret ``data``/``stringData``), and the provider version the
SDK asks for. tests/unit/test_kube_objects.py compares the two registrations field by
field. Outputs are plain dicts in camelCase: ``secret.metadata["name"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi_kubernetes import _utilities as sdk_utilities


@dataclass(frozen=True)
class _Kind:
    api_version: str
    kind: str
    # Type tokens of the kind's older API versions, as the SDK class aliases them: a stack
    # that once held the object under an old version keeps it instead of replacing it.
    aliases: tuple[str, ...] = ()
    secret_fields: tuple[str, ...] = ()  # inputs sent as secrets, outputs kept secret
    has_status: bool = True  # an output-only `status` the SDK class exposes
    # The type's name in its token when it is not the kind: a patch of an object that
    # exists (PersistentVolumeClaimPatch) registers the kind it patches.
    type_name: str = ""

    @property
    def token(self) -> str:
        group = "core/v1" if self.api_version == "v1" else self.api_version
        return f"kubernetes:{group}:{self.type_name or self.kind}"


class KubeObject(pulumi.CustomResource):
    """One Kubernetes object. Keyword fields are the object's top-level fields
    (``metadata``, ``spec``, ``data``, ``string_data``...), snake_case as the SDK's
    keyword arguments are; their values are Kubernetes' own camelCase dicts."""

    _kind: ClassVar[_Kind]
    metadata: pulumi.Output[dict[str, Any]]
    status: pulumi.Output[dict[str, Any]]

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **fields: Any) -> None:
        kind = self._kind
        props: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.kind}
        for name, value in fields.items():
            field = _camel(name)
            props[field] = pulumi.Output.secret(value) if field in kind.secret_fields and value is not None else value
        if kind.has_status:
            props["status"] = None  # an output only: gives the object its `status` Output
        own = pulumi.ResourceOptions(
            aliases=[pulumi.Alias(type_=token) for token in kind.aliases] or None,
            additional_secret_outputs=list(kind.secret_fields) or None,
        )
        # The SDK's order: its defaults (the provider version), the caller's, then its own.
        merged = pulumi.ResourceOptions.merge(pulumi.ResourceOptions.merge(sdk_utilities.get_resource_opts_defaults(), opts), own)
        super().__init__(kind.token, resource_name, props, merged)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Namespace(KubeObject):
    _kind = _Kind("v1", "Namespace")


class ServiceAccount(KubeObject):
    _kind = _Kind("v1", "ServiceAccount", has_status=False)


class Secret(KubeObject):
    _kind = _Kind("v1", "Secret", secret_fields=("data", "stringData"), has_status=False)


class ConfigMap(KubeObject):
    _kind = _Kind("v1", "ConfigMap", has_status=False)


class Service(KubeObject):
    _kind = _Kind("v1", "Service")


class PersistentVolumeClaim(KubeObject):
    _kind = _Kind("v1", "PersistentVolumeClaim")


class PersistentVolumeClaimPatch(KubeObject):
    """A server-side apply patch of an existing claim (the provider's Patch resource):
    the fields given, owned by Pulumi's field manager; the claim itself is not owned."""

    _kind = _Kind("v1", "PersistentVolumeClaim", type_name="PersistentVolumeClaimPatch")


class StatefulSet(KubeObject):
    _kind = _Kind(
        "apps/v1", "StatefulSet", aliases=("kubernetes:apps/v1beta1:StatefulSet", "kubernetes:apps/v1beta2:StatefulSet")
    )


class Deployment(KubeObject):
    _kind = _Kind(
        "apps/v1",
        "Deployment",
        aliases=(
            "kubernetes:apps/v1beta1:Deployment",
            "kubernetes:apps/v1beta2:Deployment",
            "kubernetes:extensions/v1beta1:Deployment",
        ),
    )


class Job(KubeObject):
    _kind = _Kind("batch/v1", "Job")


class CronJob(KubeObject):
    _kind = _Kind("batch/v1", "CronJob", aliases=("kubernetes:batch/v1beta1:CronJob", "kubernetes:batch/v2alpha1:CronJob"))


class HorizontalPodAutoscaler(KubeObject):
    _kind = _Kind(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        aliases=(
            "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
            "kubernetes:autoscaling/v2beta1:HorizontalPodAutoscaler",
            "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
        ),
    )


class PodDisruptionBudget(KubeObject):
    _kind = _Kind("policy/v1", "PodDisruptionBudget", aliases=("kubernetes:policy/v1beta1:PodDisruptionBudget",))


class Role(KubeObject):
    _kind = _Kind(
        "rbac.authorization.k8s.io/v1",
        "Role",
        aliases=("kubernetes:rbac.authorization.k8s.io/v1alpha1:Role", "kubernetes:rbac.authorization.k8s.io/v1beta1:Role"),
        has_status=False,
    )


class RoleBinding(KubeObject):
    _kind = _Kind(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        aliases=(
            "kubernetes:rbac.authorization.k8s.io/v1alpha1:RoleBinding",
            "kubernetes:rbac.authorization.k8s.io/v1beta1:RoleBinding",
        ),
        has_status=False,
    )


class NetworkPolicy(KubeObject):
    _kind = _Kind("networking.k8s.io/v1", "NetworkPolicy", aliases=("kubernetes:extensions/v1beta1:NetworkPolicy",))
