"""Run a built image's software the way a restricted pod runs it, without a cluster.

The image's root filesystem is mounted read-only (the pods' readOnlyRootFilesystem);
only the paths a pod mounts a volume on are writable (a fresh world-writable directory
each, like an emptyDir, shared by every command of the sandbox as a pod's volumes are by
its containers); host files can be bound read-only where a pod mounts a ConfigMap; the
process runs under the image's numeric USER (or the pod's runAsUser), which holds no
capability. Its network is the host's: every caller binds and connects to 127.0.0.1 only.

Each command gets its own mount namespace (``unshare --mount``), so every mount
disappears with the process; the image itself is never changed (a throwaway buildah
container, removed on exit with the volumes).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from tools.cluster.images import _buildah_env

# Inside the new mount namespace: mount points first (as runc creates them), then the
# root read-only, the volumes, /proc and /dev, then drop to the user and exec.
_SETUP = r"""
set -eu
root=$1 user=$2 workdir=$3 volumes=$4 binds=$5
shift 5
mount --make-rprivate /
for pair in $volumes; do mkdir -p "$root${pair%%=*}"; done
for pair in $binds; do
    target=${pair%%=*}
    if [ -d "${pair#*=}" ]; then mkdir -p "$root$target"; else mkdir -p "$(dirname "$root$target")"; touch "$root$target"; fi
done
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
for pair in $volumes; do mount --bind "${pair#*=}" "$root${pair%%=*}"; done
for pair in $binds; do mount --bind -o ro "${pair#*=}" "$root${pair%%=*}"; done
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "$@"
"""


def buildah_available() -> bool:
    return shutil.which("buildah") is not None and os.geteuid() == 0


def image_config(ref: str) -> dict[str, object] | None:
    """The OCI config of ``ref`` in the project's buildah store, or None if it is not there."""
    result = subprocess.run(
        ["buildah", "inspect", "--type", "image", ref],
        env={**os.environ, **_buildah_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return None
    config: dict[str, object] = json.loads(result.stdout)["OCIv1"]["config"]
    return config


def _buildah(*args: str) -> str:
    result = subprocess.run(
        ["buildah", *args], env={**os.environ, **_buildah_env()}, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


class Sandbox:
    """One throwaway container of ``ref``; ``run``/``start`` its commands pod-like."""

    def __init__(
        self,
        ref: str,
        *,
        writable: Sequence[str] = ("/tmp",),
        binds: Mapping[str, Path] | None = None,
        user: str | None = None,
    ) -> None:
        self.ref = ref
        self.writable = tuple(writable)
        self.binds = dict(binds or {})
        self._user = user
        self.container = ""
        self.root = ""
        self.volumes: dict[str, Path] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self.config: dict[str, Any] = {}
        self._started: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Sandbox:
        config = image_config(self.ref)
        if config is None:
            raise RuntimeError(f"{self.ref} is not in the buildah store; build it with `python3 -m tools.cluster images`")
        self.config = config
        self._scratch = tempfile.TemporaryDirectory(prefix="image-sandbox-")
        for path in self.writable:
            volume = Path(self._scratch.name) / path.strip("/").replace("/", "-")
            volume.mkdir()
            volume.chmod(0o1777)  # an emptyDir: writable by whichever uid the pod runs as
            self.volumes[path] = volume
        self.container = _buildah("from", "--pull=never", self.ref)
        self.root = _buildah("mount", self.container)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for process in self._started:
            self.stop(process)
        _buildah("umount", self.container)
        _buildah("rm", self.container)
        if self._scratch is not None:
            self._scratch.cleanup()

    @property
    def user(self) -> str:
        return self._user or str(self.config.get("User") or "0:0")

    def _argv(self, argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
        if not argv:  # a container without command: the image's entrypoint and cmd
            argv = [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]
        image_env = dict(entry.split("=", 1) for entry in self.config.get("Env") or [])
        full_env = {"HOME": "/", **image_env, **(env or {})}
        workdir = str(self.config.get("WorkingDir") or "/")
        binds = " ".join(f"{self._inside(target)}={source}" for target, source in self.binds.items())
        volumes = " ".join(f"{self._inside(target)}={source}" for target, source in self.volumes.items())
        for value in (*self.volumes, *self.binds, *map(str, [*self.binds.values(), *self.volumes.values()])):
            if any(c.isspace() or c == "=" for c in value):
                raise ValueError(f"sandbox paths may hold no spaces or '=': {value!r}")
        return [
            "unshare",
            "--mount",
            "--",
            "sh",
            "-c",
            _SETUP,
            "sandbox",
            self.root,
            self.user,
            workdir,
            volumes,
            binds,
            *(f"{name}={value}" for name, value in full_env.items()),
            *argv,
        ]

    def _inside(self, path: str) -> str:
        """``path`` with the image's symlinks resolved inside its root (/var/run -> /run), as
        runc does, so a mount never follows a link out of the image."""
        resolved = PurePosixPath("/")
        parts = list(PurePosixPath(path).parts[1:])
        for _ in range(64):
            if not parts:
                return str(resolved)
            candidate = resolved / parts.pop(0)
            host = Path(self.root + str(candidate))
            if host.is_symlink():
                link = PurePosixPath(host.readlink())
                parts = [*link.parts[1:], *parts] if link.is_absolute() else [*link.parts, *parts]
                resolved = PurePosixPath("/") if link.is_absolute() else resolved
            elif candidate.name == "..":
                resolved = resolved.parent
            else:
                resolved = candidate
        raise ValueError(f"too many symlinks in {path}")

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(argv, env), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, log: Path) -> subprocess.Popen[str]:
        """Start a long-running process (its own process group), output into ``log``;
        ``stop`` or leaving the sandbox ends it."""
        with log.open("w") as sink:
            process = subprocess.Popen(
                self._argv(argv, env), stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
        self._started.append(process)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[str], timeout: float = 60) -> int:
        """SIGTERM to the process group we started (by its id), SIGKILL after ``timeout``."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return process.returncode


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The command's exit code and output, for assertion messages."""
    return f"exit {result.returncode}: {shlex.join(result.args[-4:])}\n{result.stdout}{result.stderr}"
