#!/usr/bin/env python3
"""Offline render: evaluate the real program for a stack under Pulumi mocks and write
every Kubernetes object it registers (``manifests.yaml``) and its stack outputs
(``outputs.json``, secret ones masked). No cluster, no Pulumi CLI, no state.

    python tools/render.py --stack prod --out /tmp/p [--set kafka.replicaCount=5 ...]

The config is the stack's ``Pulumi.<stack>.yaml``; encrypted (``secure:``) values are
replaced by fixed stand-ins; ``--set KEY=VALUE`` overrides any key (dotted paths reach
into objects, VALUE is parsed as YAML). Same input, byte-identical output, so the
rendered files are what a reviewer diffs. Invalid config: the problems on stderr, exit
code 2, nothing written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settings import PROJECT, PlatformSettings, SettingsError, load_settings  # noqa: E402
from settings.stack_file import stack_config  # noqa: E402
from tools import render_mocks  # noqa: E402
from tools.fast_yaml import FastSafeDumper  # noqa: E402

if TYPE_CHECKING:
    import pulumi

    from components.network_policy import Flow

MASK = "[secret]"

# Order of kinds in manifests.yaml: what a cluster needs first comes first.
_KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "PersistentVolumeClaim",
    "StatefulSet",
    "Deployment",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
]


@dataclass(frozen=True)
class Rendered:
    settings: PlatformSettings
    objects: list[dict[str, Any]]
    outputs: dict[str, Any]  # secret outputs masked
    secret_outputs: frozenset[str]
    resource_types: dict[str, int]  # every registered resource (components too) by type token
    flows: list[Flow]  # the flow table the network policies allow
    # (kind, name) -> the ignore_changes paths the object is registered with: what an
    # update keeps from the live object instead of the program (the rendered spec is
    # then only what a create sends).
    ignore_changes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


# --- evaluation under mocks -------------------------------------------------------------


def render(stack: str, overrides: Sequence[str] = (), root: Path = ROOT) -> Rendered:
    """Evaluate the program for ``stack``; raises SettingsError on invalid config."""
    raw, secret_keys = stack_config(stack, overrides, root)
    settings = load_settings(raw, stack=stack, secret_keys=secret_keys)
    return evaluate(settings, stack)


def evaluate(settings: PlatformSettings, stack: str = "render") -> Rendered:
    """Register the platform for ``settings`` under mocks; collect objects and outputs."""
    import pulumi

    from platform_stack import build_platform

    resolved: dict[str, Any] = {}
    secret: set[str] = set()

    async def collect(outputs: dict[str, pulumi.Output]) -> None:
        for name, output in outputs.items():
            resolved[name] = await output.future()
            if await output.is_secret():
                secret.add(name)

    flows: list[Flow] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        platform = build_platform(settings)
        flows.extend(platform.flows)
        return pulumi.Output.from_input(asyncio.ensure_future(collect(platform.outputs)))

    with render_mocks.mocked_runtime(PROJECT, stack) as mocks:
        program()
    outputs = {name: (MASK if name in secret else render_mocks.plain(resolved[name])) for name in sorted(resolved)}
    return Rendered(
        settings,
        sorted(mocks.objects, key=_object_order),
        outputs,
        frozenset(secret),
        dict(sorted(mocks.types.items())),
        flows,
        dict(mocks.ignore_changes),
    )


def _object_order(obj: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = obj.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    meta = obj.get("metadata", {})
    return rank, kind, meta.get("namespace", ""), meta.get("name", "")


# --- output ------------------------------------------------------------------------------


YAML_STYLE: dict[str, Any] = {"sort_keys": True, "default_flow_style": False, "width": 120}
# libyaml's emitter is about ten times faster than PyYAML's and writes the same bytes for
# plain and single-quoted scalars, but folds long double-quoted ones differently (same
# value, other bytes). PyYAML double-quotes exactly the strings holding a line break or a
# character outside printable ASCII, so an object without such a string takes libyaml and
# the rest (the ConfigMaps' scripts and config files) keep PyYAML's emitter, in the form of
# tools/fast_yaml.py (its per-character loops as regex scans): the output stays byte for
# byte what PyYAML alone writes (tests/unit/test_render_yaml.py holds it to that).
FAST_DUMPER: type[yaml.SafeDumper] | None = getattr(yaml, "CSafeDumper", None)
_PRINTABLE_LINE = re.compile(r"[\x20-\x7e]*")


def manifests_yaml(objects: list[dict[str, Any]]) -> str:
    return "".join("---\n" + object_yaml(obj) for obj in objects)


def object_yaml(obj: dict[str, Any]) -> str:
    dumper = FAST_DUMPER if FAST_DUMPER is not None and _only_printable_lines(obj) else FastSafeDumper
    return yaml.dump(obj, Dumper=dumper, **YAML_STYLE)


def _only_printable_lines(value: Any) -> bool:
    if isinstance(value, str):
        return _PRINTABLE_LINE.fullmatch(value) is not None
    if isinstance(value, dict):
        # PyYAML writes an empty key as a complex key ("? ''"), libyaml as a simple one.
        return all(key != "" and _only_printable_lines(key) and _only_printable_lines(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_only_printable_lines(item) for item in value)
    return True


def write(rendered: Rendered, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifests.yaml").write_text(manifests_yaml(rendered.objects))
    (out / "outputs.json").write_text(json.dumps(rendered.outputs, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="directory for manifests.yaml and outputs.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = parser.parse_args(argv)
    try:
        rendered = render(args.stack, args.overrides)
    except SettingsError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        print(f"render: invalid config for stack {args.stack!r}; nothing written", file=sys.stderr)
        return 2
    write(rendered, args.out)
    print(f"render: {len(rendered.objects)} objects -> {args.out / 'manifests.yaml'}, outputs -> {args.out / 'outputs.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
