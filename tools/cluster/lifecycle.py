"""`cluster up`, `down` and `status`: the local cluster's whole life, bounded and idempotent."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import time
from pathlib import Path

from tools.cluster import addons, build, controlplane, hostcheck, images, layout, node, ns, pki
from tools.cluster.kube import Kubectl
from tools.cluster.layout import ClusterState, Node
from tools.cluster.util import REPO, ClusterError, fmt_seconds, run, say, wait_until

HOST_BEFORE = "host-before.json"

# what the tool runs from Debian, by the command that shows it is installed
HOST_COMMANDS = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "ip": "iproute2",
    "nft": "nftables",
    "iptables": "iptables",
    "ipset": "ipset",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
    "openssl": "openssl",
    "busybox": "busybox-static",
    "gcc": "gcc",
}


def require_host() -> None:
    if platform.system() != "Linux":
        raise ClusterError(f"the local cluster needs Linux (namespaces, cgroups); this is {platform.system()}")
    if os.geteuid() != 0:
        raise ClusterError("the local cluster needs root (network namespaces, mounts, cgroups): run it as root")
    missing = sorted({pkg for cmd, pkg in HOST_COMMANDS.items() if shutil.which(cmd) is None})
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        say(f"installing from Debian: {' '.join(missing)}")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env, timeout=900)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, timeout=1800)
    # Debian's containerd package starts a system containerd on /run/containerd; the nodes
    # run their own, and this one would only take memory
    if shutil.which("systemctl") is None and Path("/etc/init.d/containerd").exists():
        run(["/etc/init.d/containerd", "stop"], check=False)


def kubectl(state: Path, binaries: dict[str, Path] | None = None) -> Kubectl:
    binary = (binaries or {}).get("kubectl") or state / "bin" / "kubectl"
    return Kubectl(Path(binary), state / "kubeconfig")


# ----------------------------------------------------------------------- up ---


def up(count: int, *, at_least: bool = False) -> None:
    """Start a ``count``-node cluster, or add nodes to the running one; ``at_least``: a
    running cluster with more nodes is fine as it is (what `make up` and the tests ask)."""
    if count < 1:
        raise ClusterError(f"NODES={count}: a cluster needs at least one node")
    start = time.monotonic()
    require_host()
    binaries = build.ensure_built()
    archives = images.ensure_addon_images(binaries)
    state = layout.state_dir()
    existing = ClusterState.load(state)
    if existing and _healthy(existing, state):
        from tools.cluster import outage  # it uses this module's kubectl()

        for name in list(existing.stopped_nodes):
            say(f"{name} was stopped (`node stop`); booting it")
            outage.start_node(name)
        existing = ClusterState.load(state) or existing
        if at_least:
            count = max(count, existing.nodes)
        if count < existing.nodes:
            raise ClusterError(
                f"the cluster runs {existing.nodes} nodes; NODES={count} would remove nodes with their pods and volumes. "
                "Run `make cluster-down` first to start over smaller"
            )
        if count == existing.nodes:
            say(f"already running with {count} node{'s' * (count > 1)}")
            images.push_toolbox(existing.registry_port)
            _report(state, existing)
            return
        say(f"adding nodes {existing.nodes + 1}..{count}")
        _add_nodes(state, existing, count, binaries, archives)
    else:
        if existing or _leftovers():
            say("cleaning up an earlier cluster that is not running whole")
            down(quiet=True)
        existing = _create(state, count, binaries, archives)
    _wait_for_addons(state, binaries)
    say(f"pushed {images.push_toolbox(existing.registry_port)} to the in-cluster registry")
    say(f"cluster up in {fmt_seconds(time.monotonic() - start)}")
    _report(state, existing)


def _create(state: Path, count: int, binaries: dict[str, Path], archives: list[Path]) -> ClusterState:
    say(f"creating a {count}-node cluster in {state}")
    for sub in ("logs", "bin", "control-plane"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    # the host as it is before anything is created: `down` compares against it
    (state / HOST_BEFORE).write_text(json.dumps(hostcheck.snapshot(), indent=1) + "\n")
    registry_dir = addons.registry_dir(state)
    registry_dir.mkdir(exist_ok=True)
    os.chown(registry_dir, 65532, 65532)  # the registry pod's user
    all_nodes = layout.nodes(count)
    pki.ensure(state / "pki", all_nodes)
    parents = ns.hierarchies()
    cluster = ClusterState(
        nodes=count,
        api_port=_free_port(layout.PREFERRED_HOST_API_PORT),
        registry_port=_free_port(layout.PREFERRED_HOST_REGISTRY_PORT),
        cgroup_parents=parents,
        started=time.time(),
    )
    cluster.save(state)  # from here on, a crash leaves enough behind for `down` to clean up
    for unit in ("control-plane", "forwarder"):
        ns.create_unit(parents, unit)
    controlplane.create_network()
    for n in all_nodes:
        node.create_network(n)
    cluster.pids.update(controlplane.start(state, binaries, parents))
    cluster.pids["forwarder"] = _start_forwarder(state, cluster, parents)
    cluster.save(state)
    _write_client_files(state, cluster, binaries)
    kube = kubectl(state, binaries)
    took = wait_until("the API server's /readyz", lambda: kube.ok("get", "--raw=/readyz"), timeout=120)
    say(f"API server ready in {fmt_seconds(took)} at https://127.0.0.1:{cluster.api_port}")
    cluster.pids.update(controlplane.start_controllers(state, binaries, parents))
    cluster.save(state)
    kube.apply(addons.all_addons(state))
    _start_nodes(state, cluster, all_nodes, binaries, archives)
    return cluster


def _add_nodes(state: Path, cluster: ClusterState, count: int, binaries: dict[str, Path], archives: list[Path]) -> None:
    new = [Node(i) for i in range(cluster.nodes + 1, count + 1)]
    pki.ensure(state / "pki", layout.nodes(count))
    for n in new:
        node.create_network(n)
    cluster.nodes = count
    cluster.save(state)
    _start_nodes(state, cluster, new, binaries, archives)


def _start_nodes(state: Path, cluster: ClusterState, new: list[Node], binaries: dict[str, Path], archives: list[Path]) -> None:
    for n in new:
        ns.create_unit(cluster.cgroup_parents, n.name)
        spec = node.prepare(n, state, binaries, archives, cluster.cgroup_parents)
        cluster.node_agents[n.name] = node.start_agent(n, state, spec)
    cluster.save(state)
    kube = kubectl(state, binaries)
    all_nodes = layout.nodes(cluster.nodes)
    pod_cidrs: dict[str, str] = {}

    def registered() -> bool:
        for item in kube.json("get", "nodes")["items"]:
            cidr = item["spec"].get("podCIDR")
            if cidr:
                pod_cidrs[item["metadata"]["name"]] = cidr
        return all(n.name in pod_cidrs for n in all_nodes)

    took = wait_until(f"nodes {', '.join(n.name for n in new)} to register and get a pod CIDR", registered, timeout=180)
    say(f"{len(new)} node{'s' * (len(new) > 1)} registered in {fmt_seconds(took)}")
    for n in new:
        node.write_cni_config(n, state, pod_cidrs[n.name])
    node.route_pod_cidrs(pod_cidrs, all_nodes)

    def ready() -> bool:
        items = kube.json("get", "nodes")["items"]
        status = {
            i["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
            for i in items
        }
        return all(status.get(n.name) for n in all_nodes)

    took = wait_until("every node to be Ready", ready, timeout=240, interval=1)
    say(f"all {cluster.nodes} nodes Ready ({fmt_seconds(took)} after registering)")


def _wait_for_addons(state: Path, binaries: dict[str, Path]) -> None:
    kube = kubectl(state, binaries)
    for namespace, workload in addons.WORKLOADS:
        start = time.monotonic()
        try:
            kube("-n", namespace, "rollout", "status", workload, "--timeout=240s", timeout=260)
        except ClusterError as exc:
            pods = kube("-n", namespace, "get", "pods", "-o", "wide", check=False)
            raise ClusterError(f"gave up waiting for {namespace}/{workload} to be Ready:\n{exc}\n{pods}") from exc
        say(f"{namespace}/{workload} Ready ({fmt_seconds(time.monotonic() - start)})")
    wait_until(
        "the metrics API (metrics-server's first scrape)", lambda: kube.ok("get", "--raw=/apis/metrics.k8s.io/v1beta1/nodes"),
        timeout=120, interval=2,
    )  # fmt: skip


def _start_forwarder(state: Path, cluster: ClusterState, parents: dict[str, str]) -> int:
    rules = [
        f"127.0.0.1:{cluster.api_port}={layout.CONTROL_PLANE_NETNS}/{layout.CONTROL_PLANE_IP}:{layout.API_PORT}",
        # the registry Service, through node 1's kube-proxy rules
        f"127.0.0.1:{cluster.registry_port}={Node(1).netns}/{layout.REGISTRY_SERVICE_IP}:{layout.REGISTRY_PORT}",
    ]
    pid = ns.spawn(
        [sys.executable, "-m", "tools.cluster.forwarder", *rules],
        log=state / "logs" / "forwarder.log",
        parents=parents,
        unit="forwarder",
        netns=None,
        cwd=REPO,
    )
    wait_until("the forwarder on 127.0.0.1", lambda: _port_open(cluster.api_port), timeout=20, interval=0.2)
    return pid


def _write_client_files(state: Path, cluster: ClusterState, binaries: dict[str, Path]) -> None:
    kubeconfig = state / "kubeconfig"
    kubeconfig.write_text(pki.kubeconfig(state / "pki", "admin", f"https://127.0.0.1:{cluster.api_port}", embed=True))
    kubeconfig.chmod(0o600)
    link = state / "bin" / "kubectl"
    link.unlink(missing_ok=True)
    link.symlink_to(binaries["kubectl"])
    (state / "env").write_text(
        "# the local cluster (tools/cluster): `source .cluster/env`\n"
        f"export KUBECONFIG={kubeconfig}\n"
        f'export PATH={state / "bin"}:"$PATH"\n'
        f"# push images here; pods pull them as {layout.REGISTRY_HOST}/<name>:<tag>\n"
        f"export AI_INFRA_REGISTRY_PUSH=127.0.0.1:{cluster.registry_port}\n"
        f"export AI_INFRA_REGISTRY={layout.REGISTRY_HOST}\n"
    )


def _report(state: Path, cluster: ClusterState) -> None:
    kube = kubectl(state)
    print(kube("get", "nodes", "-L", "topology.kubernetes.io/zone", check=False), end="")
    print(f"API server: https://127.0.0.1:{cluster.api_port}   registry (push): 127.0.0.1:{cluster.registry_port}")
    print(f"pods pull project images as {layout.REGISTRY_HOST}/<name>:<tag>")
    print(f"source {state.relative_to(Path.cwd()) if state.is_relative_to(Path.cwd()) else state}/env")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ClusterError("no free port on 127.0.0.1")


def _healthy(cluster: ClusterState, state: Path) -> bool:
    """Every process runs, a node stopped on purpose (`node stop`) aside."""
    agents = [pid for name, pid in cluster.node_agents.items() if name not in cluster.stopped_nodes]
    pids = [*cluster.pids.values(), *agents]
    if not pids or not all(ns.alive(p) for p in pids):
        return False
    return kubectl(state).ok("get", "--raw=/readyz")


def _our_netns() -> list[str]:
    listing = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [n for n in names if n.startswith(layout.PREFIX)]


def _leftovers() -> bool:
    return bool(_our_netns()) or any(d.exists() for d in ns.subtree_dirs(ns.hierarchies()))


# --------------------------------------------------------------------- down ---


def down(quiet: bool = False) -> None:
    """Stop every process of the cluster, remove its namespaces, cgroups and state (caches stay)."""
    require_root = os.geteuid() == 0
    if not require_root:
        raise ClusterError("stopping the local cluster needs root")
    state = layout.state_dir()
    cluster = ClusterState.load(state)
    before_file = state / HOST_BEFORE
    host_before = json.loads(before_file.read_text()) if before_file.is_file() else None
    parents = cluster.cgroup_parents if cluster else ns.hierarchies()
    netns_names = _our_netns()
    inodes = {i for i in (ns.netns_inode(n) for n in netns_names) if i is not None}
    pids = ns.subtree_pids(parents) | set(ns.pids_in_netns(inodes))
    if cluster:
        pids |= {p for p in [*cluster.pids.values(), *cluster.node_agents.values()] if ns.alive(p)}
    if pids:
        if not quiet:
            say(f"stopping {len(pids)} processes")
        left = ns.kill_all(pids, grace=5)
        if left:
            raise ClusterError(f"processes {sorted(left)} did not stop; nothing was removed")
    stuck = ns.remove_subtree(parents)
    for name in netns_names:
        run(["ip", "netns", "del", name], check=False)
    mounts = [
        line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f" {state}/" in line or f" {state} " in line
    ]
    if mounts:
        raise ClusterError(f"mounts under {state} remain; not removing it:\n" + "\n".join(mounts))
    if state.exists():
        shutil.rmtree(state)
    if stuck:
        raise ClusterError(f"cgroups that could not be removed: {', '.join(map(str, stuck))}")
    if host_before is not None:
        hostcheck.restore_netns_mount(host_before)
        changed = hostcheck.differences(host_before, hostcheck.snapshot())
        if changed:
            raise ClusterError("the host is not as it was before `cluster up`:\n" + "\n".join(changed))
    if not quiet:
        checked = ", checked against the snapshot from before `cluster up`" if host_before else ""
        say(f"cluster stopped; its namespaces, cgroups and state are gone{checked} (build caches stay)")


# ------------------------------------------------------------------- status ---


def status() -> int:
    state = layout.state_dir()
    cluster = ClusterState.load(state)
    if cluster is None:
        print("no local cluster (make cluster-up starts one)")
        leftovers = _our_netns()
        if leftovers:
            print(f"leftovers of an earlier run: network namespaces {', '.join(leftovers)} (make cluster-down removes them)")
        return 1
    print(f"local cluster: {cluster.nodes} node(s), state {state}")
    for name, pid in sorted({**cluster.pids, **{f"node agent {k}": v for k, v in cluster.node_agents.items()}}.items()):
        stopped = name.removeprefix("node agent ") in cluster.stopped_nodes
        running = "stopped (`node start` boots it)" if stopped else "running" if ns.alive(pid) else "NOT RUNNING"
        print(f"  {name:<28} pid {pid:<8} {running}")
    print(f"  API server https://127.0.0.1:{cluster.api_port}, registry push 127.0.0.1:{cluster.registry_port}")
    print("  memory (resident set of every process in the unit's cgroup):")
    for unit, mib in memory_by_unit(cluster).items():
        print(f"    {unit:<16} {mib:>6} MiB")
    kube = kubectl(state)
    if not kube.ok("get", "--raw=/readyz"):
        print("  the API server does not answer")
        return 1
    print(kube("get", "nodes", "-o", "wide", "-L", "topology.kubernetes.io/zone", check=False), end="")
    print(kube("get", "pods", "-A", "-o", "wide", check=False), end="")
    return 0


def memory_by_unit(cluster: ClusterState) -> dict[str, int]:
    """MiB resident per cgroup unit (control plane, forwarder, each node with its pods)."""
    memory = next((Path(m) / p.lstrip("/") for m, p in cluster.cgroup_parents.items() if m.endswith("/memory")), None)
    result: dict[str, int] = {}
    if memory is None or not (memory / layout.CGROUP_NAME).is_dir():
        return result
    for unit in sorted(d for d in (memory / layout.CGROUP_NAME).iterdir() if d.is_dir()):
        kib = 0
        for procs in unit.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        result[unit.name] = kib // 1024
    return result


# ------------------------------------------------------------------- images ---


def project_images(*, push: bool, registry: str = "", only: tuple[str, ...] = ()) -> None:
    """Build images/*/Dockerfile; with ``push``, push them to the running cluster's registry;
    with ``registry``, to that registry (for `pulumi config set imageRegistry`)."""
    require_host()
    built = images.build_project_images(only)
    if registry:
        images.push_to_registry(built, registry)
        say(f"now: pulumi config set imageRegistry {registry}")
        return
    if not push:
        return
    state = layout.state_dir()
    cluster = ClusterState.load(state)
    if cluster is None or not _healthy(cluster, state):
        say("no local cluster runs, so the images stay in buildah's store (`make cluster-up`, then `make images` pushes)")
        return
    images.push(built, cluster.registry_port)
