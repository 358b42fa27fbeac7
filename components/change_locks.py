"""Change locks: Pulumi itself refuses a config change that would stop or destroy a data
system by surprise (settings/data_safety.py says which, and how to lift one).

A lock is a ``random.RandomId`` whose ``keepers`` are the shape the change must not
alter: a change of the shape replaces the lock. Protected (``dataSafety.protect``, on in
prod), the engine refuses that replacement, and the deletion of a lock whose system is
switched off, with "unable to replace (delete) resource ... as it is currently marked for
protection"; that fails the preview, and `pulumi up` before any step runs. Whatever a lock
guards depends on it, so even `pulumi up --skip-preview` never reaches the guarded object:
its registration waits for the lock, which never resolves.

The lock's resource name is the message the user reads in that error: the config keys it
guards and the key that lets one planned `pulumi up` through, e.g.
``patroni.persistence+storageClass-change-refused-unless-dataSafety.allowVolumeClaimChange``.
The README's "Data safety" section gives each lock's procedure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_random as random

from components import k8s as shapes
from components import kube_objects as kube
from settings.base import PersistenceSettings
from settings.data_safety import KEY, DataSafetySettings

# The provider deletes an object with this annotation without cascading to its
# dependents (pulumi-kubernetes v4.25.0, provider/pkg/metadata/overrides.go): a replaced
# StatefulSet leaves its pods running and the new one, with the same selector, adopts them.
DELETION_PROPAGATION = "pulumi.com/deletionPropagationPolicy"
# The provider's annotation that lets its server-side apply take a field another manager
# owns: the StatefulSet controller created the claims and owns their requested size.
PATCH_FORCE = "pulumi.com/patchForce"


def lock_name(guarded: Sequence[str], override: str) -> str:
    """The lock's resource name: ``<keys>-change-refused-unless-<override>``."""
    return f"{'+'.join(guarded)}-change-refused-unless-{override}"


def change_lock(
    guarded: Sequence[str],
    override: str,
    *,
    shape: Mapping[str, pulumi.Input[str]],
    locked: bool,
    parent: pulumi.Resource | None = None,
    aliases: Sequence[str] = (),
) -> random.RandomId:
    """A lock that is replaced when ``shape`` changes; ``locked``: Pulumi refuses that.
    ``guarded``: the config keys (below the project namespace) whose change alters the
    shape; ``override``: the key (below the project namespace) that sets ``locked`` off.
    ``aliases``: earlier names of the same lock, so a renamed lock is not replaced."""
    return random.RandomId(
        lock_name(guarded, override),
        byte_length=4,
        keepers=dict(shape),
        opts=pulumi.ResourceOptions(
            parent=parent, protect=locked, aliases=[pulumi.Alias(name=alias) for alias in aliases] or None
        ),
    )


def volume_claims_lock(
    persistence_key: str,
    persistence: PersistenceSettings,
    stack_storage_class: str,
    safety: DataSafetySettings,
    *,
    parent: pulumi.Resource,
) -> random.RandomId:
    """The lock of one StatefulSet's volumeClaimTemplates (``persistence_key``: its
    ``*.persistence`` block). Kubernetes forbids changing the claim templates of a live
    StatefulSet, so the provider replaces it, deleting first (the name is fixed): every
    member stops, and the existing claims keep their old size and class."""
    storage_class = persistence.storage_class or stack_storage_class
    shape = {"enabled": str(persistence.enabled).lower()}
    if persistence.enabled:
        shape |= {"size": persistence.size, "storageClass": storage_class}
    return change_lock(
        [persistence_key, "storageClass"],
        f"{KEY}.allowVolumeClaimChange",
        shape=shape,
        locked=safety.volume_claims_locked,
        parent=parent,
    )


def removal_lock(enabled_key: str, safety: DataSafetySettings, *, parent: pulumi.Resource) -> random.RandomId:
    """A lock that exists while a data system does (``enabled_key``: its ``*.enabled``):
    switching the system off deletes it, which a protected lock refuses."""
    return change_lock(
        [enabled_key], f"{KEY}.allowRemoval", shape={"system": enabled_key}, locked=safety.removal_locked, parent=parent
    )


def credentials_lock(
    guarded: Sequence[str],
    credentials: Sequence[pulumi.Output[str]],
    safety: DataSafetySettings,
    *,
    parent: pulumi.Resource,
    identities: Mapping[str, str] | None = None,
) -> random.RandomId:
    """A lock on the credentials a running system holds inside itself (roles in
    PostgreSQL, requirepass in Redis): a new value in the Secret would reach pods that
    PostgreSQL or Redis still expect the old one from. Keyed by a hash of the values,
    kept secret in the state; never the values themselves. ``identities``: names the
    system also fixed at bootstrap (PostgreSQL's roles and database), kept as they are."""
    hashed: pulumi.Output[str] = pulumi.Output.all(*credentials).apply(credential_fingerprint)
    fingerprint: pulumi.Output[str] = pulumi.Output.secret(hashed)
    return change_lock(
        guarded,
        f"{KEY}.allowCredentialChange",
        shape={"fingerprint": fingerprint, **(identities or {})},
        locked=safety.credentials_locked,
        parent=parent,
    )


def credential_fingerprint(values: Sequence[str]) -> str:
    """What the credentials lock keeps of the credentials: a hash (of the same kind as the
    pods' credentials checksum, under its own prefix), never a value."""
    return shapes.checksum("change-lock", *values)


def statefulset_annotations(safety: DataSafetySettings) -> dict[str, str]:
    """Metadata annotations of a data StatefulSet: orphan its pods when it is replaced."""
    return {DELETION_PROPAGATION: "orphan"} if safety.orphan_pods_on_replace else {}


def grown_claims(
    name: str,
    *,
    claim: str,
    statefulset: str,
    namespace: str,
    replicas: int,
    persistence: PersistenceSettings,
    safety: DataSafetySettings,
    after: pulumi.Resource,
    parent: pulumi.Resource,
) -> list[kube.PersistentVolumeClaimPatch]:
    """With ``dataSafety.allowVolumeClaimChange``: each member's claim
    (``<claim>-<statefulset>-<ordinal>``) asked for ``persistence.size``, after the
    StatefulSet (``after``) is in place. The API server grows the volume in place when the
    claim's StorageClass has ``allowVolumeExpansion`` and refuses otherwise (and always
    refuses a smaller size): the `pulumi up` then fails there, with the pods running.
    Kept in the cluster when the override is unset (``retain_on_delete``): dropping the
    patch must never touch the claim."""
    if not (safety.allow_volume_claim_change and persistence.enabled):
        return []
    return [
        kube.PersistentVolumeClaimPatch(
            f"{name}-{claim}-{ordinal}-size",
            metadata={"name": f"{claim}-{statefulset}-{ordinal}", "namespace": namespace, "annotations": {PATCH_FORCE: "true"}},
            spec={"resources": {"requests": {"storage": persistence.size}}},
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[after], retain_on_delete=True),
        )
        for ordinal in range(replicas)
    ]
