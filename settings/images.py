"""The images this project builds (images/*/Dockerfile) and how ``imageRegistry`` names them.

A project image's default repository is its bare name (``ai-infra-patroni``): no public
registry serves it, so it means something only with ``imageRegistry`` in front. The
prefix applies to exactly these names, so a repository a user points at another registry
(``docker.io/library/redis``) is left as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from settings.base import ImageSettings

# The org.opencontainers.image.title of each images/*/Dockerfile (a test keeps them equal).
PROJECT_IMAGES = frozenset(
    {
        "ai-infra-patroni",
        "ai-infra-redis",
        "ai-infra-kafka",
        "ai-infra-redis-exporter",
        "ai-infra-kafka-exporter",
        "ai-infra-backup",
    }
)


def with_registry(config: dict[str, Any], registry: str) -> dict[str, Any]:
    """``config`` (raw, merged) with ``registry/`` in front of every project image's repository."""
    if not registry:
        return config

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            updated = {key: walk(value) for key, value in node.items()}
            if updated.get("repository") in PROJECT_IMAGES:
                updated["repository"] = f"{registry.rstrip('/')}/{updated['repository']}"
            return updated
        return node

    return walk(config)


def project_images_without_registry(model: BaseModel, path: str = "") -> Iterator[tuple[str, str]]:
    """(config key, reference) of each project image an enabled part runs from its bare name."""
    if getattr(model, "enabled", True) is False:
        return
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{path}{field.alias or name}"
        if isinstance(value, ImageSettings):
            if value.repository in PROJECT_IMAGES:
                yield key, value.reference
        elif isinstance(value, BaseModel):
            yield from project_images_without_registry(value, f"{key}.")
