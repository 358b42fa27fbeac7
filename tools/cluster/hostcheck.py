"""What of the host's own state the local cluster promises not to touch, as one snapshot.

The host's network namespace (routes, addresses, links, nft and iptables rules), the global
sysctls the kubelet and kube-proxy would write, its mounts, network namespaces and the
cgroup directories outside our subtree. `cluster up` takes one before it creates anything
(``.cluster/host-before.json``); `cluster down` takes another after it removed everything
and fails, naming each difference, when the host is not as it was.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tools.cluster import layout, ns

SYSCTLS = [
    *layout.KUBELET_KERNEL_TUNABLES,
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "fs/inotify/max_user_instances",
]


def _out(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout + (f"[exit {result.returncode}] {result.stderr.strip()}" if result.returncode else "")


def _cgroup_dirs() -> list[str]:
    """Every cgroup directory two levels below where our subtree would sit, ours excluded."""
    dirs: list[str] = []
    for path in ns.subtree_dirs(ns.hierarchies()):
        parent = path.parent
        for child in sorted(parent.iterdir()):
            if child.is_dir() and child.name != layout.CGROUP_NAME:
                dirs.append(str(child))
                dirs.extend(str(g) for g in sorted(child.iterdir()) if g.is_dir())
    return dirs


def snapshot() -> dict[str, Any]:
    return {
        "routes": _out("ip", "-4", "route", "show", "table", "all") + _out("ip", "-6", "route", "show", "table", "all"),
        "addresses": _out("ip", "-o", "addr", "show"),
        "links": sorted(line.split(":")[1].strip() for line in _out("ip", "-o", "link", "show").splitlines() if ":" in line),
        "nft": _out("nft", "list", "ruleset"),
        "iptables": _out("iptables-save") + _out("ip6tables-save"),
        "sysctls": {k: Path("/proc/sys", k).read_text().strip() for k in SYSCTLS if Path("/proc/sys", k).exists()},
        "netns": sorted(_out("ip", "netns", "list").split("\n")),
        "mounts": _mounts(),
        "cgroups": _cgroup_dirs(),
        "our_cgroup_subtree": [str(p) for p in ns.subtree_dirs(ns.hierarchies()) if p.exists()],
    }


NETNS_DIR = "/run/netns"


def _mounts() -> list[str]:
    return sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())


def restore_netns_mount(before: dict[str, Any]) -> None:
    """The first `ip netns add` on a host makes /run/netns a mount point of its own (a
    shared bind mount, so namespace handles propagate), and `ip netns del` leaves it. On a
    host where it was not one before `cluster up` (a fresh machine), and with no namespace
    handle left in it, unmount it again: the host is then as it was."""
    path = Path(NETNS_DIR)
    if not path.is_dir() or any(path.iterdir()):
        return
    for _ in range(_mounts().count(NETNS_DIR) - before["mounts"].count(NETNS_DIR)):
        subprocess.run(["umount", NETNS_DIR], capture_output=True, timeout=30, check=False)


# What a running cluster adds by design, and `down` removes: the namespace handles under
# /run/netns, their mounts, and our own cgroup subtree.
WHILE_RUNNING = ("netns", "mounts", "our_cgroup_subtree")


def differences(before: dict[str, Any], after: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{key}: before {before[key]!r}\n  after  {after[key]!r}"
        for key in before
        if key not in ignore and before[key] != after.get(key)
    ]
