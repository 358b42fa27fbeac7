"""Reading the stack files (``Pulumi.<stack>.yaml``) outside the Pulumi engine: for the
offline render, the cluster probe and ``tools/stack.sh``.

The engine hands a running program its config itself (``settings.from_pulumi_config``);
everything else reads a stack file through here, so "which keys are ours, which are
secret, what does ``--set`` mean" is answered once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from settings.base import PROJECT, Problem, SettingsError
from settings.defaults import deep_merge

ROOT = Path(__file__).resolve().parents[1]

# What a passphrase or cloud secrets manager writes into a stack file: tied to one
# backend and one passphrase, so it never belongs in a copy made for another backend.
SECRETS_MANAGER_KEYS = ("encryptionsalt", "secretsprovider", "encryptedkey")


def stack_path(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def known_stacks(root: Path = ROOT) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in root.glob("Pulumi.*.yaml"))


def read_document(path: Path) -> dict[str, Any]:
    """A stack file as YAML; an absent or empty file is an empty document."""
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise SettingsError([Problem("stack", f"{path.name} is not a YAML mapping")])
    return document


def stack_config(stack: str, overrides: Sequence[str] = (), root: Path = ROOT) -> tuple[dict[str, Any], set[str]]:
    """The raw project config of ``stack`` with ``--set``-style ``overrides`` applied, and
    the keys that hold secrets. Encrypted values become stand-ins, as the real values are
    unreadable without the stack's passphrase."""
    from settings import SECRET_KEYS

    path = stack_path(stack, root)
    if not path.is_file():
        raise SettingsError([Problem("stack", f"no stack file {path.name}; known stacks: {', '.join(known_stacks(root))}")])
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    prefix = f"{PROJECT}:"
    for full_key, value in (read_document(path).get("config") or {}).items():
        if not full_key.startswith(prefix):
            continue  # other namespaces (pulumi:, kubernetes:) configure the engine, not us
        key = full_key[len(prefix) :]
        if _is_secure(value):
            secret_keys.add(key)
            raw[key] = f"render-stand-in-for-{key}"
        else:
            raw[key] = value
    for override in overrides:
        key, value = parse_override(override)
        set_path(raw, key.split("."), value)
        if key in SECRET_KEYS:
            secret_keys.add(key)  # given on the command line, not stored in a stack file
    return raw, secret_keys


def portable_document(path: Path) -> dict[str, Any]:
    """The stack file at ``path`` as it is in a fresh clone: without what one backend's
    secrets manager wrote into it (the salt, encrypted values), so a copy works with any
    backend and passphrase. The e2e tests start their stacks from these."""
    document = {key: value for key, value in read_document(path).items() if key not in SECRETS_MANAGER_KEYS}
    config = document.get("config") or {}
    document["config"] = {key: value for key, value in config.items() if not _is_secure(value)}
    return document


def sync_local_copy(tracked: Path, local: Path, target_defaults: dict[str, Any] | None = None) -> None:
    """Bring ``local`` (the stack file the engine reads and writes for a local backend,
    outside the work tree) up to date with ``tracked`` (the stack file in git).

    Value by value (a nested object's leaves, as `pulumi config set --path` writes them):
    every value of the tracked file wins; a value the engine or the user set in the local
    copy (the passphrase's salt, `pulumi config set [--path|--secret]`) stays, over the
    target's defaults; a value that earlier came from the tracked file or the target's
    defaults and is gone from them now goes. What was taken is remembered beside the copy
    for that last rule.

    ``target_defaults``: config the deploy target supplies (the local cluster's image
    registry and stand-in application images), under everything else."""
    taken_file = local.with_name(local.name + ".taken")
    source, copy = read_document(tracked), read_document(local)
    previously_taken = _leaves(yaml.safe_load(taken_file.read_text()) or {}) if taken_file.is_file() else {}
    earlier_format = local.with_name(local.name + ".tracked-keys")  # top-level keys only
    if not taken_file.is_file() and earlier_format.is_file():
        keys = set(yaml.safe_load(earlier_format.read_text()) or [])
        previously_taken = _leaves({k: v for k, v in (copy.get("config") or {}).items() if k in keys})
    defaults, tracked_config = target_defaults or {}, source.get("config") or {}
    # what the user or the engine set: a leaf of the copy that is not what was taken
    own = {path: value for path, value in _leaves(copy.get("config") or {}).items() if previously_taken.get(path) != value}
    config = deep_merge(deep_merge(defaults, _nest(own)), tracked_config)
    merged = {key: value for key, value in copy.items() if key in SECRETS_MANAGER_KEYS}
    merged |= {key: value for key, value in source.items() if key != "config"}
    merged["config"] = config
    local.parent.mkdir(parents=True, exist_ok=True)
    _replace(local, yaml.safe_dump(merged, sort_keys=False, default_flow_style=False))
    _replace(taken_file, yaml.safe_dump(deep_merge(defaults, tracked_config), sort_keys=True))


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, and only when its text changes: runs of
    tools/stack.sh side by side (previews of several changes) sync the same copy, and
    none may read it half written."""
    if path.is_file() and path.read_text() == text:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


def _leaves(config: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """``config``'s values by path; an empty object or a list is a value of its own, and
    so is a secret (``{"secure": ...}``)."""
    found: dict[tuple[str, ...], Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and set(value) != {"secure"}:
            found |= _leaves(value, (*prefix, key))
        else:
            found[(*prefix, key)] = value
    return found


def _nest(leaves: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in leaves.items():
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``: VALUE is YAML, KEY may carry the project prefix."""
    key, separator, value = text.partition("=")
    key = key.strip().removeprefix(f"{PROJECT}:")
    if not separator or not key:
        raise SettingsError([Problem("--set", f"{text!r} is not KEY=VALUE (e.g. --set kafka.replicaCount=5)")])
    try:
        return key, yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError as error:
        raise SettingsError([Problem(key, f"value {value!r} given with --set is not valid YAML: {error}")]) from None


def set_path(config: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``value`` at the dotted path ``parts``, creating objects on the way."""
    node = config
    for index, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            if child is not None:
                raise SettingsError([Problem(".".join(parts[: index + 1]), "is not an object; cannot set a key inside it")])
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}
