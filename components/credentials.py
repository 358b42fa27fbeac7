"""Credentials: the one given with ``pulumi config set --secret``, or else one generated
once by pulumi_random and kept in the stack state, so it is stable across updates.

A generated credential is what the data on the volumes was written with (PostgreSQL's
roles, Redis' requirepass/masterauth), and the volumes outlive `pulumi destroy`. So the
generator is protected: `make destroy` (`pulumi destroy --exclude-protected`) keeps it
and a later `pulumi up` brings the same value back, where a plain `pulumi destroy` is
refused instead of leaving volumes no new pod can open."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr


def credential(
    name: str,
    configured: SecretStr | None,
    *,
    parent: pulumi.Resource | None = None,
    length: int = 32,
    guards_data: bool = True,
) -> pulumi.Output[str]:
    """A secret Output holding the credential ``name`` (``parent``: the component it
    belongs to; the random resource takes no Kubernetes provider). ``guards_data``: data
    on a volume was written with it, so its generator is protected (a login of a
    stateless tool, such as Kafka UI's, is not, and goes with its tool)."""
    # Letters and digits only: the value goes into URLs, shell variables and config
    # files, where punctuation would need escaping somewhere along the way. Registered
    # even when a value is configured: a protected generator that left the program would
    # be a refused delete, so a planned rotation to a configured value (the change locks'
    # procedure) could never pass; unused, it costs one entry in the state.
    generated = random.RandomPassword(
        name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent, protect=guards_data)
    )
    if configured is not None:
        return pulumi.Output.secret(configured.get_secret_value())
    return pulumi.Output.secret(generated.result)
