"""Credentials: the one given with ``pulumi config set --secret``, or else one generated
once by pulumi_random and kept in the stack state, so it is stable across updates."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr


def credential(
    name: str, configured: SecretStr | None, *, parent: pulumi.Resource | None = None, length: int = 32
) -> pulumi.Output[str]:
    """A secret Output holding the credential ``name`` (``parent``: the component it
    belongs to; the random resource takes no Kubernetes provider)."""
    if configured is not None:
        return pulumi.Output.secret(configured.get_secret_value())
    # Letters and digits only: the value goes into URLs, shell variables and config
    # files, where punctuation would need escaping somewhere along the way.
    generated = random.RandomPassword(name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(generated.result)
