"""What the local cluster supplies to a stack deployed into it (tools/stack.sh puts it under
the stack file's own values): the in-cluster registry for the project's images, the
stand-in application image for the app tier (the AI Infra Matrix images are not ours),
and the two parts with no image this project can build here switched off: kafka-exporter
(the Go module proxy serves no version of github.com/danielqsj/kafka_exporter) and Kafka
UI (kafbat's application is published only as a container image and a GitHub release jar,
neither reachable here; prod enables it elsewhere). Never a fake in their place."""

from __future__ import annotations

from typing import Any

from tools.cluster import layout
from tools.cluster.util import REPO

TEST_APP_DIRECTORY = REPO / "tests" / "app"


def local_cluster_config() -> dict[str, Any]:
    """Project config keys (with the ``ai-infra-matrix:`` prefix) for the local cluster."""
    from tools.cluster.images import image_labels

    title, version = image_labels(TEST_APP_DIRECTORY / "Dockerfile")
    image = {"repository": f"{layout.REGISTRY_HOST}/{title}", "tag": version}
    config: dict[str, Any] = {
        "ai-infra-matrix:imageRegistry": layout.REGISTRY_HOST,
        "ai-infra-matrix:kafka": {"exporter": {"enabled": False}, "ui": {"enabled": False}},
        # the stand-in listens on $PORT (8082, the backend's): the web tiers answer on 80
        "ai-infra-matrix:backend": {"image": image},
        "ai-infra-matrix:frontend": {"image": image, "env": {"PORT": "80"}},
        "ai-infra-matrix:nginx": {"image": image, "env": {"PORT": "80"}},
    }
    return config


def local_cluster_overrides() -> list[str]:
    """local_cluster_config() as ``key=value`` settings (dotted keys, no project prefix),
    as `tools/render.py --set` and `pulumi config set --path` take them."""
    import json

    def leaves(value: Any, path: str) -> list[str]:
        if isinstance(value, dict):
            return [item for key, child in value.items() for item in leaves(child, f"{path}.{key}" if path else key)]
        return [f"{path}={json.dumps(value) if isinstance(value, bool) else value}"]

    config = {key.removeprefix("ai-infra-matrix:"): value for key, value in local_cluster_config().items()}
    return leaves(config, "")
