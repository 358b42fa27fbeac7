"""The init process of one node: ``python -m tools.cluster.node_agent SPEC.json``.

It makes the node what a kind node container is, without a container runtime around it:

1. joins the node's cgroup (``<own cgroup>/ai-infra-matrix-cluster/<node>`` in every
   hierarchy) and the node's network namespace;
2. unshares a mount and a cgroup namespace, so every mount below stays private to the node
   and the kubelet and runc see the node's cgroup as the root (``/kubepods`` lands inside
   our subtree, and cAdvisor watches only this node's cgroups);
3. mounts a sysfs of the node's network namespace and the cgroup hierarchies, binds the
   node's own directories over the paths the kubelet, containerd, runc and the CNI plugins
   hard-code (/run, /var/lib, /var/log), its own resolv.conf over /etc/resolv.conf, and a
   file with the wanted value over each kernel tunable the kubelet would otherwise write
   on the host;
4. starts containerd, imports the preloaded images, then the kubelet and kube-proxy, and
   restarts any of them that exits (with backoff) until it gets SIGTERM.

Everything it does is described by the spec ``tools/cluster/node.py`` writes, so this file
stays a small, generic init system.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.cluster import ns


def main(spec_path: str) -> int:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    log_dir = Path(spec["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    ns.join_unit(spec["cgroup_parents"], spec["unit"])
    ns.enter_netns(spec["netns"])
    ns.unshare(ns.CLONE_NEWNS | ns.CLONE_NEWCGROUP)
    _mount_node_filesystem(spec)
    for key, value in spec["sysctls"].items():
        Path("/proc/sys", key).write_text(f"{value}\n")
    return Supervisor(spec, log_dir).run()


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _mount_node_filesystem(spec: dict[str, Any]) -> None:
    _mount("--make-rprivate", "/")  # nothing mounted below may reach the host's namespace
    _mount("-t", "sysfs", "sysfs", "/sys")  # /sys/class/net of this node's network namespace
    _mount("-t", "tmpfs", "-o", "mode=755", "cgroup", "/sys/fs/cgroup")
    for hierarchy in spec["cgroup_mounts"]:
        target = hierarchy["target"]
        Path(target).mkdir(exist_ok=True)
        # in the new cgroup namespace each hierarchy's root is the node's own cgroup
        _mount("-t", hierarchy["fstype"], "-o", hierarchy["options"], hierarchy["fstype"], target)
    for source, target in spec["binds"]:
        _mount("--bind", source, target)
    for source, target in spec["shared_binds"]:
        # the kubelet's root: a mount point of its own, shared within the node, as on a host
        _mount("--bind", source, target)
        _mount("--make-rshared", target)


class Supervisor:
    """Start the daemons in order and keep them running until SIGTERM."""

    def __init__(self, spec: dict[str, Any], log_dir: Path) -> None:
        self.spec = spec
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for daemon in self.spec["daemons"]:
            self._start(daemon)
            if daemon.get("ready_socket"):
                self._wait_for(Path(daemon["ready_socket"]), daemon["name"])
                self._preload_images()
        while not self.stopping:
            self._reap()
            time.sleep(0.5)
        self._shutdown()
        return 0

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _start(self, daemon: dict[str, Any]) -> None:
        log = (self.log_dir / f"{daemon['name']}.log").open("ab")
        self.children[daemon["name"]] = subprocess.Popen(daemon["argv"], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _wait_for(self, socket: Path, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not socket.exists():
            if time.monotonic() > deadline or self.children[name].poll() is not None:
                print(f"node-agent: {name} did not open {socket}", file=sys.stderr, flush=True)
                break
            time.sleep(0.1)

    def _preload_images(self) -> None:
        for archive in self.spec["images"]:
            argv = [*self.spec["ctr"], "images", "import", archive]
            with (self.log_dir / "preload.log").open("ab") as log:
                subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)

    def _reap(self) -> None:
        for daemon in self.spec["daemons"]:
            child = self.children.get(daemon["name"])
            if child is None or child.poll() is None:
                continue
            # a crashed daemon comes back, as under systemd's Restart=always, but a daemon
            # that keeps crashing is left down after 5 tries a minute (its log says why)
            now = time.monotonic()
            recent = [t for t in self.restarts.get(daemon["name"], []) if now - t < 60]
            if len(recent) >= 5:
                continue
            self.restarts[daemon["name"]] = [*recent, now]
            print(f"node-agent: {daemon['name']} exited ({child.returncode}); restarting", file=sys.stderr, flush=True)
            time.sleep(min(2 ** len(recent), 10))
            self._start(daemon)

    def _shutdown(self) -> None:
        for daemon in reversed(self.spec["daemons"]):
            child = self.children.get(daemon["name"])
            if child and child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1]))
