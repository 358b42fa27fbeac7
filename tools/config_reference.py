#!/usr/bin/env python3
"""Generate the README's reference sections from the code: the config reference from the
settings models (every key, its dev and prod default, its description) and the outputs
contract from platform_stack.OUTPUTS. `make docs` rewrites the sections between their
markers; a test fails when the README and the code drift apart."""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settings import PROJECT, load_settings  # noqa: E402
from settings.platform import PlatformSettings, SecretSettings  # noqa: E402

README = ROOT / "README.md"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds directly (``X`` or ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        if model is PlatformSettings and name == "secrets":
            continue
        key = f"{prefix}{field.alias or name}"
        nested = _model_of(field.annotation)
        if nested is not None:
            rows += _rows(nested, f"{key}.")
        else:
            rows.append((key, field.description or ""))
    return rows


def _lookup(dumped: dict[str, Any], key: str) -> Any:
    node: Any = dumped
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _show(value: Any) -> str:
    if value is None or value in ("", [], {}):
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return f"`{text}`".replace("|", "\\|")


def reference() -> str:
    defaults = {stack: load_settings({}, stack=stack).model_dump(by_alias=True, mode="json") for stack in ("dev", "prod")}
    lines = [
        f"Keys live under the `{PROJECT}:` namespace (`pulumi config set --path {PROJECT}:backend.autoscaling.maxReplicas 12`).",
        "A key not set in the stack file takes the default of the stack's profile.",
        "",
        "| key | dev default | prod default | meaning |",
        "|---|---|---|---|",
    ]
    for key, description in _rows(PlatformSettings, ""):
        dev, prod = (_show(_lookup(defaults[stack], key)) for stack in ("dev", "prod"))
        lines.append(f"| `{key}` | {dev} | {prod} | {description} |")
    lines += [
        "",
        "Credentials (top-level keys, only ever set with `pulumi config set --secret KEY VALUE`; "
        "each one left unset is generated once with `pulumi_random` and kept in the stack state):",
        "",
        "| secret key | meaning |",
        "|---|---|",
    ]
    for name, field in SecretSettings.model_fields.items():
        lines.append(f"| `{field.alias or name}` | {field.description or ''} |")
    return "\n".join(lines) + "\n"


def outputs_contract() -> str:
    from platform_stack import OUTPUTS, SECRET_OUTPUTS

    lines = ["| output | secret | meaning |", "|---|---|---|"]
    for key, description in OUTPUTS.items():
        lines.append(f"| `{key}` | {'yes' if key in SECRET_OUTPUTS else 'no'} | {description} |")
    return "\n".join(lines) + "\n"


SECTIONS = {"config-reference": reference, "outputs": outputs_contract}


def _bounds(text: str, name: str) -> tuple[int, int]:
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    return text.index(start_marker) + len(start_marker), text.index(end_marker)


def section(text: str, name: str) -> str:
    """The generated text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    start, end = _bounds(text, name)
    return text[start:end].strip("\n") + "\n"


def main() -> int:
    text = README.read_text()
    for name, generate in SECTIONS.items():
        start, end = _bounds(text, name)
        text = text[:start] + "\n" + generate() + text[end:]
    README.write_text(text)
    print(f"reference sections written to {README.name}: {', '.join(SECTIONS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
