"""Small helpers every part of the cluster tool uses: progress lines, commands, bounded waits."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("AI_INFRA_CLUSTER_CACHE", Path.home() / ".cache" / "ai-infra-matrix" / "cluster"))


class ClusterError(RuntimeError):
    """A failure the tool explains in one message (printed without a traceback)."""


def say(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    capture: bool = True,
    input_text: str | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise ClusterError with its output, not a traceback."""
    args = [str(a) for a in argv]
    full_env = {**os.environ, **env} if env else None
    try:
        result = subprocess.run(
            args,
            env=full_env,
            cwd=cwd,
            text=True,
            input=input_text,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise ClusterError(f"`{args[0]}` is not installed") from exc
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout or "").splitlines()[-30:])
        raise ClusterError(f"`{' '.join(args)}` failed with exit code {result.returncode}:\n{tail}")
    return result


def wait_until(what: str, probe: Callable[[], bool], *, timeout: float, interval: float = 0.5) -> float:
    """Poll ``probe`` until it is true; return the seconds it took, or raise naming ``what``."""
    start = time.monotonic()
    while True:
        try:
            if probe():
                return time.monotonic() - start
        except (OSError, ClusterError):
            pass
        if time.monotonic() - start > timeout:
            raise ClusterError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def digest(*parts: str | bytes | Path) -> str:
    """A short, stable hash of the inputs that decide a build (file contents for paths)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(part.read_bytes())
        elif isinstance(part, str):
            h.update(part.encode())
        else:
            h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def fmt_seconds(seconds: float) -> str:
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s" if seconds >= 60 else f"{seconds:.1f}s"
