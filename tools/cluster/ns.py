"""Linux namespaces and cgroups, the two ways the cluster is kept apart from the host.

Network and mount namespaces are entered with setns(2)/unshare(2) (Python 3.11's os module
has neither); cgroups are plain directories under each v1 hierarchy (and the v2 one of the
hybrid layout), all below one subtree, ``<own cgroup>/ai-infra-matrix-cluster``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from tools.cluster.layout import CGROUP_NAME
from tools.cluster.util import ClusterError

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter_netns(name: str) -> None:
    """Move the calling thread into the named network namespace (``ip netns`` names)."""
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns({name})")
    finally:
        os.close(fd)


def netns_fd(name: str) -> int:
    return os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)


def setns_fd(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def netns_inode(name: str) -> int | None:
    try:
        return (NETNS_DIR / name).stat().st_ino
    except OSError:
        return None


# ------------------------------------------------------------------- cgroups ---


def _mounts_by_key() -> dict[str, str]:
    """/proc/<pid>/cgroup's hierarchy key ("memory", "name=systemd", "" for v2) -> mount point."""
    mounts: dict[str, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        fstype, _source, options = right.split()[:3]
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            opts = [o for o in options.split(",") if o not in {"rw", "ro"}]
            controllers = [o for o in opts if "=" not in o]
            key = ",".join(controllers + [o for o in opts if o.startswith("name=")])
        else:
            continue
        mounts[key] = left.split()[4]
    return mounts


def cgroups_of(pid: int | str = "self") -> dict[str, str]:
    """cgroup mount point -> the process's cgroup in that hierarchy."""
    mounts = _mounts_by_key()
    result: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, key, path = line.split(":", 2)
        if key in mounts:
            result[mounts[key]] = path
    return result


def hierarchies() -> dict[str, str]:
    """cgroup mount point -> the calling process's cgroup: where our subtree goes in each."""
    result = cgroups_of()
    if not result:
        raise ClusterError("no cgroup hierarchies are mounted under /sys/fs/cgroup")
    return result


def subtree_dirs(parents: dict[str, str], unit: str = "") -> list[Path]:
    """The directory of our subtree (or of one unit in it) in every hierarchy."""
    return [Path(mount) / own.lstrip("/") / CGROUP_NAME / unit for mount, own in parents.items()]


def create_unit(parents: dict[str, str], unit: str) -> None:
    """Make ``<subtree>/<unit>`` in every hierarchy, ready to take processes."""
    for path in subtree_dirs(parents, unit):
        for directory in (path.parent, path):
            directory.mkdir(exist_ok=True)
            # a new cpuset cgroup starts with no CPUs and no memory nodes: inherit them
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (directory / knob).exists() and not (directory / knob).read_text().strip():
                    (directory / knob).write_text((directory.parent / knob).read_text())


def join_unit(parents: dict[str, str], unit: str, pid: int = 0) -> None:
    """Move ``pid`` (0: the caller) into the unit, in every hierarchy."""
    for path in subtree_dirs(parents, unit):
        (path / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")


def subtree_pids(parents: dict[str, str], unit: str = "") -> set[int]:
    """Every process in our subtree, or in one unit of it (a node: its agent, daemons and pods)."""
    pids: set[int] = set()
    for root in subtree_dirs(parents, unit):
        if not root.is_dir():
            continue
        for procs in root.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    pids.discard(os.getpid())
    return pids


def remove_subtree(parents: dict[str, str]) -> list[Path]:
    """rmdir the subtree depth-first in every hierarchy; return what could not be removed."""
    left: list[Path] = []
    for root in subtree_dirs(parents):
        if not root.is_dir():
            continue
        for directory in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
            _rmdir(directory, left)
        _rmdir(root, left)
    return left


def _rmdir(directory: Path, left: list[Path]) -> None:
    for _ in range(20):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                break
            time.sleep(0.1)
    left.append(directory)


def kill_all(pids: set[int], *, grace: float) -> set[int]:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the pids still alive."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if alive(p)}


def kill_unit(parents: dict[str, str], unit: str, *, timeout: float = 20) -> set[int]:
    """SIGKILL every process of the unit, again for any that appear meanwhile, until it is
    empty (as a power cut: nothing gets to shut down); return the pids still alive."""
    deadline = time.monotonic() + timeout
    pids = subtree_pids(parents, unit)
    while pids and time.monotonic() < deadline:
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.2)
        pids = {p for p in subtree_pids(parents, unit) if alive(p)}
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def pids_in_netns(inodes: set[int]) -> Iterator[int]:
    """Processes whose network namespace is one of ``inodes``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "ns" / "net").stat().st_ino in inodes:
                yield int(entry.name)
        except OSError:
            continue


def spawn(argv: list[str], *, log: Path, parents: dict[str, str], unit: str, netns: str | None, cwd: Path | None = None) -> int:
    """Start a daemon in our cgroup ``unit`` (and network namespace), detached; return its pid."""
    import subprocess

    def enter() -> None:  # runs in the child between fork and exec
        join_unit(parents, unit)
        if netns:
            enter_netns(netns)

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=enter,  # noqa: PLW1509 - the tool starts daemons from one thread
        )
    return child.pid
