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
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "cgroups": _cgroup_dirs(),
        "our_cgroup_subtree": [str(p) for p in ns.subtree_dirs(ns.hierarchies()) if p.exists()],
    }


# What a running cluster adds by design, and `down` removes: the namespace handles under
# /run/netns, their mounts, and our own cgroup subtree.
WHILE_RUNNING = ("netns", "mounts", "our_cgroup_subtree")


def differences(before: dict[str, Any], after: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{key}: before {before[key]!r}\n  after  {after[key]!r}"
        for key in before
        if key not in ignore and before[key] != after.get(key)
    ]
