"""The one place the stack config is read and checked.

``load_settings`` turns the raw ``ai-infra-matrix:*`` config of a stack into a validated
``PlatformSettings`` or raises ``SettingsError`` carrying one ``Problem`` per mistake, each
naming the full key and the fix. Nothing in here registers a resource, so a bad config
fails before anything is deployed.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from settings.base import PROJECT, Problem, SettingsError
from settings.defaults import PROFILES, deep_merge, profile_defaults
from settings.images import project_images_without_registry, with_registry
from settings.platform import PlatformSettings, SecretSettings

# `make up` sets this for a dev stack with no reachable cluster: the engine then writes
# the manifests to this directory instead of applying them (kubernetes.renderYamlToDirectory).
RENDER_DIR_ENV = "AI_INFRA_RENDER_DIR"

# Top-level config keys that hold credentials; they must be stored with --secret.
SECRET_KEYS: tuple[str, ...] = tuple(field.alias or name for name, field in SecretSettings.model_fields.items())

# Keys of the guide's values files that carried plaintext passwords, and where each
# credential lives instead.
_GUIDE_SECRET_KEYS: dict[tuple[str, ...], str] = {
    ("patroni", "postgresql", "password"): "postgresPassword",
    ("patroni", "postgresql", "replicationPassword"): "replicationPassword",
    ("redisCluster", "password"): "redisPassword",
}


def default_profile(stack: str) -> str:
    """The profile a stack gets when its config names none: ``prod*`` stacks are prod."""
    return "prod" if stack.startswith("prod") else "dev"


def load_settings(raw: Mapping[str, Any], *, stack: str, secret_keys: Collection[str] = ()) -> PlatformSettings:
    """Validate ``raw`` (config keys without the ``ai-infra-matrix:`` prefix, structured
    values already decoded) for ``stack``. ``secret_keys`` names the keys that were stored
    encrypted; a credential outside it is refused as plaintext."""
    config = dict(raw)
    problems: list[Problem] = []

    secrets: dict[str, Any] = {}
    for key in SECRET_KEYS:
        if key in config:
            secrets[key] = config.pop(key)
            if key not in secret_keys:
                problems.append(
                    Problem(
                        key,
                        "is stored in plaintext in the stack file; remove it and run "
                        f"pulumi config set --secret {key} <value> (or leave it unset to have one generated)",
                    )
                )
    for path, replacement in _GUIDE_SECRET_KEYS.items():
        if _pop_path(config, path):
            problems.append(
                Problem(
                    ".".join(path),
                    "passwords are not kept in plain stack config; remove this key and run "
                    f"pulumi config set --secret {replacement} <value> (or leave it unset to have one generated)",
                )
            )

    profile = config.get("profile", default_profile(stack))
    if profile not in PROFILES:
        raise SettingsError([*problems, Problem("profile", f"must be one of {', '.join(PROFILES)} (got {profile!r})")])
    config["profile"] = profile
    base = profile_defaults(profile)
    merged = _without_disabled_parts(deep_merge(base, config), base)
    merged = with_registry(merged, str(merged.get("imageRegistry") or ""))
    merged["secrets"] = secrets

    try:
        settings = PlatformSettings.model_validate(merged)
    except ValidationError as error:
        raise SettingsError(problems + _problems_from(error)) from None
    problems += settings.problems()
    if problems:
        raise SettingsError(problems)
    return settings


# The parts of the stack a config can switch off, parents before their children. A part
# whose `enabled` is false is not checked beyond that flag: its other keys are set aside
# and the profile's defaults stand in, so a half-edited block of a switched-off system
# never blocks a deploy.
SWITCHABLE_PARTS: tuple[tuple[str, ...], ...] = (
    ("patroni",),
    ("redisCluster",),
    ("redisCluster", "exporter"),
    ("kafka",),
    ("kafka", "ui"),
    ("kafka", "exporter"),
    ("backend",),
    ("frontend",),
    ("nginx",),
    ("backup",),
    ("backup", "postgres"),
    ("backup", "redis"),
    # Not ("monitoring",): its namespace is where Prometheus runs, which the network
    # policies admit to the metrics ports whether the Operator objects are made or not.
    ("monitoring", "alerts"),
    ("monitoring", "dashboards"),
    ("networkPolicy",),
)


def _without_disabled_parts(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    for path in SWITCHABLE_PARTS:
        parent, default = _node(config, path[:-1]), _node(defaults, path)
        part = parent.get(path[-1]) if isinstance(parent, dict) else None
        if isinstance(part, dict) and isinstance(default, dict) and _is_false(part.get("enabled")):
            parent[path[-1]] = {**default, "enabled": False}
    return config


def _node(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _is_false(value: Any) -> bool:
    """``enabled`` as pydantic reads a bool: false, "false", 0, "off", "no"..."""
    try:
        return TypeAdapter(bool).validate_python(value) is False
    except ValidationError:
        return False  # not a bool at all: validation reports it


def decode_config_value(value: Any) -> Any:
    """Pulumi hands structured config (objects, lists) to programs as JSON text."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def from_pulumi_config() -> PlatformSettings:
    """Read every ``ai-infra-matrix:*`` key of the running stack and validate it."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{PROJECT}:"
    every_key = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    ours = [key for key in every_key if key.startswith(prefix)]
    raw = {key[len(prefix) :]: decode_config_value(runtime_config.get_config(key)) for key in ours}
    secret_env = set(runtime_config.get_config_secret_keys_env())
    secret_keys = {key[len(prefix) :] for key in ours if key in secret_env or runtime_config.is_config_secret(key)}
    render_dir = os.environ.get(RENDER_DIR_ENV)
    if render_dir:
        raw["kubernetes"] = {"renderYamlToDirectory": render_dir}
    settings = load_settings(raw, stack=pulumi.get_stack(), secret_keys=secret_keys)
    unresolved = [] if settings.kubernetes.render_yaml_to_directory else list(project_images_without_registry(settings))
    if unresolved:
        problem = unresolved_images_problem(unresolved)
        if not pulumi.runtime.is_dry_run():
            raise SettingsError([problem])
        # a preview (a pull request's, say) still shows the plan; `pulumi up` refuses
        pulumi.log.warn(f"{PROJECT}:{problem.key}: {problem.message} (pulumi up refuses this stack until then)")
    return settings


def unresolved_images_problem(unresolved: list[tuple[str, str]]) -> Problem:
    listed = ", ".join(f"{key} ({reference})" for key, reference in unresolved)
    return Problem(
        "imageRegistry",
        f"is empty, so {listed} name images this project builds and no registry serves; "
        "publish them with `make images-push REGISTRY=<registry>` and run pulumi config set imageRegistry <registry> "
        "(or point each key at an image you publish)",
    )


# --- turning pydantic's errors into problems -------------------------------------------


def _problems_from(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if loc and loc[0] == "secrets":
            loc = loc[1:]  # credentials are top-level keys in the stack config
        key = _dotted(loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            known = _known_keys(loc[:-1])
            hint = f"; valid keys here: {', '.join(known)}" if known else ""
            message = f"unknown key (a typo?){hint}"
        elif kind == "missing":
            message = "is required; set it in the stack config"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if not isinstance(item.get("input"), dict | list):
                message += f" (got {item.get('input')!r})"
        problems.append(Problem(key, message))
    return problems


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _pop_path(config: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = config
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and path[-1] in node:
        del node[path[-1]]
        return True
    return False


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_container(argument) for argument in typing.get_args(annotation))
    return origin in (list, dict)


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    """The keys accepted at ``path`` of the stack config, for "unknown key" hints."""
    if not path:
        keys = [key for key in _aliases(PlatformSettings) if key != "secrets"]
        return sorted([*keys, *SECRET_KEYS])
    model: type[BaseModel] | None = PlatformSettings
    parts = list(path)
    index = 0
    while index < len(parts) and model is not None:
        annotation = _aliases(model).get(parts[index])
        if annotation is None:
            return []
        if _is_container(annotation):
            index += 1  # the next part is a list index or a dict key
        model = _model_in(annotation)
        index += 1
    return sorted(_aliases(model)) if model is not None else []


__all__ = [
    "PROJECT",
    "RENDER_DIR_ENV",
    "SECRET_KEYS",
    "PlatformSettings",
    "Problem",
    "SettingsError",
    "decode_config_value",
    "default_profile",
    "from_pulumi_config",
    "load_settings",
    "unresolved_images_problem",
]
