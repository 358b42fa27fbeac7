#!/usr/bin/env python3
"""Generate the README's reference sections from the code: the config reference from the
settings models (every key, its dev and prod default, its description), the outputs
contract from platform_stack.OUTPUTS and the network flow table from platform_flows.py.
`make docs` rewrites the sections between their markers; a test fails when the README and
the code drift apart.

The same sections of README.zh-CN.md (the Simplified Chinese README) are generated with
``lang="zh-CN"``: same keys and defaults, the descriptions and table headers taken from
docs/i18n/zh-CN.yaml (a key without a translation falls back to English, with a warning,
and tests/unit/test_docs_zh.py fails until it is translated)."""

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
I18N = ROOT / "docs" / "i18n"
# language -> the README whose generated sections are written in it
READMES = {"en": README, "zh-CN": ROOT / "README.zh-CN.md"}


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


# The English texts of the generated sections; other languages take theirs from
# docs/i18n/<lang>.yaml (same names under `text` and `headers`).
ENGLISH = {
    "text": {
        "namespace": "Keys live under the `{project}:` namespace "
        "(`pulumi config set --path {project}:backend.autoscaling.maxReplicas 12`).",
        "profileDefault": "A key not set in the stack file takes the default of the stack's profile.",
        "credentials": "Credentials (top-level keys, only ever set with `pulumi config set --secret KEY VALUE`; "
        "each one left unset is generated once with `pulumi_random` and kept in the stack state):",
    },
    "headers": {
        "key": "key",
        "devDefault": "dev default",
        "prodDefault": "prod default",
        "meaning": "meaning",
        "secretKey": "secret key",
        "output": "output",
        "secret": "secret",
        "yes": "yes",
        "no": "no",
        "from": "from",
        "to": "to",
        "ports": "ports",
        "why": "why",
        "anyPort": "any",
    },
}

# The stack whose flow table the README shows: prod, with an S3 destination and one extra
# egress CIDR, so every kind of flow the program can allow appears once.
FLOW_TABLE_STACK = (
    "prod",
    (
        "backup.destination=s3",
        "backup.s3.bucket=backups",
        "backup.s3.credentialsSecret=backup-s3",
        'networkPolicy.backendEgressCidrs=["203.0.113.0/24"]',
    ),
)


def translations(lang: str) -> dict[str, Any]:
    """The texts of the generated sections in ``lang``: ``text`` and ``headers`` (complete:
    English where the data file lacks one), and ``keys``, ``shared``, ``secrets``, ``outputs``
    (descriptions, as docs/i18n/<lang>.yaml has them; empty for English)."""
    data: dict[str, Any] = {}
    if lang != "en":
        import yaml

        data = yaml.safe_load((I18N / f"{lang}.yaml").read_text(encoding="utf-8")) or {}
    return {
        "text": ENGLISH["text"] | (data.get("text") or {}),
        "headers": ENGLISH["headers"] | (data.get("headers") or {}),
        **{part: data.get(part) or {} for part in ("keys", "shared", "secrets", "outputs", "flows")},
    }


def config_rows() -> list[tuple[str, str]]:
    """(dotted config key, English description) for every config key, in README order."""
    return _rows(PlatformSettings, "")


def secret_rows() -> list[tuple[str, str]]:
    """(secret key, English description) for every credential."""
    return [(field.alias or name, field.description or "") for name, field in SecretSettings.model_fields.items()]


def _config_description(texts: dict[str, Any], key: str, english: str) -> str | None:
    return texts["keys"].get(key) or texts["shared"].get(english)


def untranslated(lang: str) -> list[str]:
    """What the README in ``lang`` would show in English: config keys, secret keys and
    outputs without a description in docs/i18n/<lang>.yaml."""
    from platform_stack import OUTPUTS

    if lang == "en":
        return []
    texts = translations(lang)
    missing = [f"config key {key}" for key, english in config_rows() if not _config_description(texts, key, english)]
    missing += [f"secret key {key}" for key, _ in secret_rows() if not texts["secrets"].get(key)]
    missing += [f"output {key}" for key in OUTPUTS if not texts["outputs"].get(key)]
    return missing


def reference(lang: str = "en") -> str:
    texts = translations(lang)
    text, header = texts["text"], texts["headers"]
    defaults = {stack: load_settings({}, stack=stack).model_dump(by_alias=True, mode="json") for stack in ("dev", "prod")}
    lines = [
        text["namespace"].format(project=PROJECT),
        text["profileDefault"],
        "",
        f"| {header['key']} | {header['devDefault']} | {header['prodDefault']} | {header['meaning']} |",
        "|---|---|---|---|",
    ]
    for key, english in config_rows():
        dev, prod = (_show(_lookup(defaults[stack], key)) for stack in ("dev", "prod"))
        lines.append(f"| `{key}` | {dev} | {prod} | {_config_description(texts, key, english) or english} |")
    lines += [
        "",
        text["credentials"],
        "",
        f"| {header['secretKey']} | {header['meaning']} |",
        "|---|---|",
    ]
    for key, description in secret_rows():
        lines.append(f"| `{key}` | {texts['secrets'].get(key) or description} |")
    return "\n".join(lines) + "\n"


def outputs_contract(lang: str = "en") -> str:
    from platform_stack import OUTPUTS, SECRET_OUTPUTS

    header = translations(lang)["headers"]
    described = translations(lang)["outputs"]
    lines = [f"| {header['output']} | {header['secret']} | {header['meaning']} |", "|---|---|---|"]
    for key, description in OUTPUTS.items():
        secret = header["yes"] if key in SECRET_OUTPUTS else header["no"]
        lines.append(f"| `{key}` | {secret} | {described.get(key) or description} |")
    return "\n".join(lines) + "\n"


def flow_table(lang: str = "en") -> str:
    """The network policies' flow table (platform_flows.py) of FLOW_TABLE_STACK, as a
    Markdown table: who connects to whom, on which ports, and why."""
    from tools.render import render

    texts = translations(lang)
    header, said = texts["headers"], texts["flows"]
    stack, overrides = FLOW_TABLE_STACK
    rows = [f"| {header['from']} | {header['to']} | {header['ports']} | {header['why']} |", "|---|---|---|---|"]
    for flow in render(stack, overrides).flows:
        ports = ", ".join(str(port) for port in flow.ports) or header["anyPort"]
        source, destination = (said.get(end.name) or end.name for end in (flow.source, flow.destination))
        rows.append(f"| {source} | {destination} | {ports} | {said.get(flow.purpose) or flow.purpose} |")
    return "\n".join(rows) + "\n"


SECTIONS = {"config-reference": reference, "outputs": outputs_contract, "flows": flow_table}


def _bounds(text: str, name: str) -> tuple[int, int]:
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    return text.index(start_marker) + len(start_marker), text.index(end_marker)


def section(text: str, name: str) -> str:
    """The generated text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    start, end = _bounds(text, name)
    return text[start:end].strip("\n") + "\n"


def main(languages: list[str]) -> int:
    """Rewrite the generated sections of the README of each language given (default: all)."""
    for lang in languages or READMES:
        readme = READMES[lang]
        text = readme.read_text(encoding="utf-8")
        for name, generate in SECTIONS.items():
            start, end = _bounds(text, name)
            text = text[:start] + "\n" + generate(lang) + text[end:]
        readme.write_text(text, encoding="utf-8")
        print(f"reference sections written to {readme.name}: {', '.join(SECTIONS)}")
        missing = untranslated(lang)
        if missing:
            print(
                f"warning: {len(missing)} left in English in {readme.name} (add them to docs/i18n/{lang}.yaml): "
                + ", ".join(missing),
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
