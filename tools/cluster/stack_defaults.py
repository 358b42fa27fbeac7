"""What the local cluster supplies to a stack deployed into it (tools/stack.sh puts it under
the stack file's own values): the in-cluster registry for the project's images, and the
stand-in application image for the app tier (the AI Infra Matrix images are not ours)."""

from __future__ import annotations

from typing import Any

from tools.cluster import layout
from tools.cluster.util import REPO

TEST_APP_DIRECTORY = REPO / "tests" / "app"


def local_cluster_config() -> dict[str, Any]:
    """Project config keys (with the ``ai-infra-matrix:`` prefix) for the local cluster."""
    from tools.cluster.images import image_labels

    config: dict[str, Any] = {"ai-infra-matrix:imageRegistry": layout.REGISTRY_HOST}
    dockerfile = TEST_APP_DIRECTORY / "Dockerfile"
    if dockerfile.is_file():
        title, version = image_labels(dockerfile)
        image = {"repository": f"{layout.REGISTRY_HOST}/{title}", "tag": version}
        for tier in ("backend", "frontend", "nginx"):
            config[f"ai-infra-matrix:{tier}"] = {"image": image}
    return config
