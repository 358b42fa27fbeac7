"""The objects floor: what any Pulumi program that manages the render's Kubernetes objects
pays, whatever it is written like. It registers each object of a render, as the render
wrote it, as one flat ``pulumi.CustomResource`` of the object's own type with one explicit
provider: no settings, no components, no random values, no outputs wired between objects.

The bench sets each measured command beside it, so the gap between the two is the
program's own cost (its settings, its components and their wiring, the manifests it
writes) and the rest is the SDK's, the engine's and the provider's per-object cost:

    python -m tools.benchmark.replay OBJECTS.json   under the render's mocks (tools/render_mocks.py)
    program(OBJECTS.json)                           as the __main__ of a Pulumi project, for preview

OBJECTS.json is a JSON list of the render's objects (``objects_file``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def type_token(obj: dict[str, Any]) -> str:
    """The provider's type token of a Kubernetes object: ``kubernetes:apps/v1:StatefulSet``."""
    api_version = obj["apiVersion"]
    return f"kubernetes:{'core/v1' if api_version == 'v1' else api_version}:{obj['kind']}"


def resource_name(obj: dict[str, Any]) -> str:
    """A name unique within one render: the object's kind, namespace and name."""
    meta = obj["metadata"]
    return "-".join(part for part in (obj["kind"], meta.get("namespace", ""), meta["name"]) if part)


def objects_file(objects: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(objects)))
    return path


def register(objects: Sequence[dict[str, Any]], provider: Any = None) -> list[Any]:
    """Register every object; the resources, in order."""
    import pulumi

    opts = pulumi.ResourceOptions(provider=provider) if provider is not None else None
    return [pulumi.CustomResource(type_token(obj), resource_name(obj), dict(obj), opts) for obj in objects]


def program(path: Path) -> None:
    """The floor project's program: the objects with one explicit Kubernetes provider, as
    the stacks name theirs (their default provider is disabled)."""
    import pulumi_kubernetes

    register(json.loads(path.read_text()), pulumi_kubernetes.Provider("kubernetes"))


def render_floor(path: Path) -> int:
    """The objects registered under the render's mocks; how many were recorded."""
    import pulumi

    from tools import render_mocks

    objects = json.loads(path.read_text())

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        return pulumi.Output.all(*(resource.id for resource in register(objects)))

    with render_mocks.mocked_runtime("bench-floor", "prod") as mocks:
        run()
    return len(mocks.objects)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tools.benchmark.replay OBJECTS.json", file=sys.stderr)
        return 2
    # The floor of `import pulumi, pulumi_kubernetes` is part of this one too.
    import pulumi_kubernetes  # noqa: F401

    count = render_floor(Path(args[0]))
    print(f"replay: {count} objects registered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
