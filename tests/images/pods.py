"""The rendered dev stack's pods, run from the project's images in a Sandbox.

A container of a rendered workload is run with its own command and env and its
ConfigMaps mounted where the pod mounts them, from the image the tests name: only what a
pod gets from the cluster is stood in for (Secret values, the pod name and IP, DNS names
in /etc/hosts), and what must change to stay on this machine's loopback is changed in the
config files and said so by the caller (listen addresses and ports).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.conftest import Objects, render_stack
from tools.cluster.images import project_images

STACK = "dev"


@functools.cache
def objects(*overrides: str) -> Objects:
    """The dev stack's objects, rendered with ``--set`` style ``overrides``."""
    return Objects(render_stack(STACK, *overrides).objects)


def image_ref(title: str) -> str:
    """The reference `make images` tags the image titled ``title`` with."""
    return next(image.ref for image in project_images() if image.repository == title)


def pod_spec(kind: str, name: str, *overrides: str) -> dict[str, Any]:
    workload = objects(*overrides).get(kind, name)
    spec = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def container(pod: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in pod["initContainers" if init else "containers"] if c["name"] == name)
    return found


def config_files(
    pod: dict[str, Any],
    spec: dict[str, Any],
    workdir: Path,
    edit: Mapping[str, Any] | None = None,
    overrides: tuple[str, ...] = (),
) -> dict[str, Path]:
    """The ConfigMap volumes the container mounts, written under ``workdir`` as the
    kubelet writes them (mode from defaultMode), keyed by mount path. ``edit`` maps
    "<mountPath>/<key>" to a function that changes that file's text."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, Path] = {}
    for mount in spec.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})  # absent: a claim of the volumeClaimTemplates
        if "configMap" not in volume:
            continue
        data = objects(*overrides).get("ConfigMap", volume["configMap"]["name"])["data"]
        target = workdir / mount["name"]
        target.mkdir(parents=True, exist_ok=True)
        for key, text in data.items():
            change = (edit or {}).get(f"{mount['mountPath']}/{key}")
            (target / key).write_text(change(text) if change else text)
            (target / key).chmod(volume["configMap"].get("defaultMode", 0o644))
        target.chmod(0o755)
        mounts[mount["mountPath"]] = target
    return mounts


def writable_paths(pod: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Every path the container mounts a volume on that is not a ConfigMap (emptyDirs,
    claims from volumeClaimTemplates): the only writable places on a read-only root."""
    configmaps = {v["name"] for v in pod["volumes"] if "configMap" in v}
    return [m["mountPath"] for m in spec.get("volumeMounts", []) if m["name"] not in configmaps and not m.get("readOnly")]


def env(
    spec: dict[str, Any], *, pod_name: str, secrets: Mapping[str, str], values: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The container's env as the kubelet gives it: field refs for the pod's name and IP
    (127.0.0.1), ``secrets`` standing in for every secretKeyRef by env name, ``values``
    replacing plain values (ports, hosts), then $(VAR) references expanded."""
    result: dict[str, str] = {}
    unknown = set(values or {}) - {entry["name"] for entry in spec.get("env", [])}
    assert not unknown, f"the rendered container {spec['name']} has no env {sorted(unknown)}"
    for entry in spec.get("env", []):
        name = entry["name"]
        source = entry.get("valueFrom", {})
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            value = {"metadata.name": pod_name, "status.podIP": "127.0.0.1"}[field]
        elif "secretKeyRef" in source:
            assert name in secrets, f"{name} comes from a Secret; the test must stand in for it"
            value = secrets[name]
        else:
            value = (values or {}).get(name, entry.get("value", ""))
        result[name] = re.sub(r"\$\((\w+)\)", lambda m: result.get(m.group(1), m.group(0)), value)
    return result


def hosts_file(workdir: Path, names: list[str]) -> Path:
    """An /etc/hosts resolving the pods' DNS names to loopback (the kubelet writes one too)."""
    path = workdir / "hosts"
    path.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {name}\n" for name in names))
    path.chmod(0o644)
    return path
