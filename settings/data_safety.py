"""Settings of the change locks: which config changes that would stop or destroy a data
system Pulumi refuses, and the one-`pulumi up` overrides of a planned change.

A change lock (components/change_locks.py) is a small random resource whose inputs are
the shape a change must not alter by surprise (the volume claims, the credentials, where
the data systems live). With ``protect`` on, Pulumi refuses to replace or delete it, and
so refuses the whole update, before any object changes. Each ``allow*`` key lifts the
protection of one kind of lock for the `pulumi up` of a planned change; unset it after.
"""

from __future__ import annotations

from pydantic import Field

from settings.base import PROJECT, ConfigModel

KEY = "dataSafety"


class DataSafetySettings(ConfigModel):
    protect: bool = Field(
        default=False,
        description="Protect the change locks in the stack state: a config change that would replace a data "
        "StatefulSet's volume claims, rotate a database or Redis credential, move the stack (namespace, "
        "releaseName) or remove a data system is refused before anything changes, unless its allow key is set. "
        "Also marks the data StatefulSets to orphan (keep) their pods when one is replaced.",
    )
    allow_volume_claim_change: bool = Field(
        default=False,
        description="Let one `pulumi up` change a persistence size or storage class: the StatefulSet is "
        "replaced with its pods kept (orphaned and re-adopted, no restart) and, for a larger size, each "
        "member's claim is grown in place (needs a StorageClass with allowVolumeExpansion).",
    )
    allow_credential_change: bool = Field(
        default=False,
        description="Let one `pulumi up` change postgresPassword, replicationPassword or redisPassword, after "
        "the new value was set in the running system (the README's rotation procedure).",
    )
    allow_removal: bool = Field(
        default=False,
        description="Let one `pulumi up` delete a data system's objects: disabling patroni, redisCluster or kafka, "
        "or changing namespace or releaseName (the volumes stay; the pods stop).",
    )

    @property
    def volume_claims_locked(self) -> bool:
        return self.protect and not self.allow_volume_claim_change

    @property
    def credentials_locked(self) -> bool:
        return self.protect and not self.allow_credential_change

    @property
    def removal_locked(self) -> bool:
        return self.protect and not self.allow_removal

    @property
    def orphan_pods_on_replace(self) -> bool:
        """The data StatefulSets carry the provider's orphan deletion policy. It must be
        in the stack state before a replacement (the provider deletes with the old
        object's annotation), so it is there whenever the locks are, not only during
        the override's `pulumi up`."""
        return self.protect


def override_key(field: str) -> str:
    """The full config key of one of this block's fields (``allowVolumeClaimChange``)."""
    alias = DataSafetySettings.model_fields[field].alias or field
    return f"{PROJECT}:{KEY}.{alias}"
