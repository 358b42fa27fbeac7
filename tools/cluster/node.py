"""One node: its network namespace on the fabric, its directories and configs, its agent.

``prepare`` writes everything a node runs with into ``.cluster/nodes/<node>/``: containerd's
config and registry mirrors, the kubelet and kube-proxy configs and kubeconfigs, its
resolv.conf, the files for the kernel tunables, and the spec ``node_agent`` starts from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.cluster import layout, ns, pki
from tools.cluster.layout import Node
from tools.cluster.util import REPO, run

PAUSE_IMAGE = "localhost/ai-infra-matrix/pause:3.10"


def create_network(node: Node) -> None:
    """The node's namespace, joined to the fabric bridge by a veth pair; no way out."""
    cp = layout.CONTROL_PLANE_NETNS
    if ns.netns_inode(node.netns) is None:
        run(["ip", "netns", "add", node.netns])
    run(["ip", "-n", cp, "link", "del", node.fabric_port], check=False)
    run(["ip", "-n", cp, "link", "add", node.fabric_port, "type", "veth", "peer", "name", "eth0", "netns", node.netns])
    run(["ip", "-n", cp, "link", "set", node.fabric_port, "master", layout.FABRIC_BRIDGE, "up"])
    run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
    run(["ip", "-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", "eth0"])
    run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
    # the kubelet picks its node IP from the default route; it leads to aim-cp, which has
    # no link out of the cluster, so nothing routed there goes any further
    run(["ip", "-n", node.netns, "route", "add", "default", "via", layout.CONTROL_PLANE_IP])


def route_pod_cidrs(pod_cidrs: dict[str, str], all_nodes: list[Node]) -> None:
    """Every node and the control plane reach each node's pod CIDR through that node."""
    by_name = {n.name: n for n in all_nodes}
    for name, cidr in pod_cidrs.items():
        via = by_name[name].ip
        for netns in [layout.CONTROL_PLANE_NETNS, *(n.netns for n in all_nodes if n.name != name)]:
            run(["ip", "-n", netns, "route", "replace", cidr, "via", via])


def write_cni_config(node: Node, state: Path, pod_cidr: str) -> None:
    conf = {
        "cniVersion": "1.0.0",
        "name": "ai-infra-local",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,  # pod IPs are routed between nodes as they are
                "hairpinMode": True,  # a pod can reach itself through its Service
                "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    target = node.dir(state) / "etc" / "cni" / "10-ai-infra-local.conflist"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(conf, indent=2) + "\n")
    tmp.replace(target)


def prepare(node: Node, state: Path, binaries: dict[str, Path], images: list[Path], parents: dict[str, str]) -> Path:
    """Write the node's directories, configs and agent spec; return the spec's path."""
    root = node.dir(state)
    etc = root / "etc"
    for sub in ("run", "var-lib/kubelet", "var-log", "etc/cni", "logs", "sysctl", "volume-plugins"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    server = f"https://{layout.CONTROL_PLANE_IP}:{layout.API_PORT}"
    pki_dir = state / "pki"
    (etc / "kubelet.kubeconfig").write_text(pki.kubeconfig(pki_dir, f"kubelet-{node.name}", server))
    (etc / "kube-proxy.kubeconfig").write_text(pki.kubeconfig(pki_dir, "kube-proxy", server))
    # containerd and the pods' "Default" DNS policy read this: cluster DNS and nothing else
    (etc / "resolv.conf").write_text(f"nameserver {layout.DNS_SERVICE_IP}\n")
    (etc / "containerd.toml").write_text(_containerd_config(node, state))
    _write_registry_mirrors(etc / "certs.d")
    (etc / "kubelet.json").write_text(json.dumps(_kubelet_config(node, state), indent=2) + "\n")
    (etc / "kube-proxy.json").write_text(json.dumps(_kube_proxy_config(node, etc), indent=2) + "\n")

    binds = [
        [str(root / "run"), "/run"],
        [str(root / "var-log"), "/var/log"],
        [str(etc / "resolv.conf"), "/etc/resolv.conf"],
    ]
    for key, value in layout.KUBELET_KERNEL_TUNABLES.items():
        if Path("/proc/sys", key).read_text().strip() != value:
            tunable = root / "sysctl" / key.replace("/", ".")
            tunable.write_text(f"{value}\n")
            binds.append([str(tunable), f"/proc/sys/{key}"])
    socket = "/run/containerd/containerd.sock"
    spec = {
        "node": node.name,
        "netns": node.netns,
        "unit": node.name,
        "cgroup_parents": parents,
        "cgroup_mounts": _cgroup_mounts(),
        "log_dir": str(root / "logs"),
        # /var/lib first: the shared kubelet bind lands inside the node's own /var/lib
        "binds": [[str(root / "var-lib"), "/var/lib"], *binds],
        "shared_binds": [[str(root / "var-lib" / "kubelet"), "/var/lib/kubelet"]],
        "sysctls": {
            "net/ipv4/ip_forward": "1",  # per network namespace: routes pod traffic
            "net/bridge/bridge-nf-call-iptables": "1",  # bridged pod traffic meets NetworkPolicy
            "net/bridge/bridge-nf-call-ip6tables": "1",
        },
        "ctr": ["ctr", "--address", socket, "--namespace", "k8s.io"],
        "images": [str(i) for i in images],
        "daemons": [
            {"name": "containerd", "argv": ["containerd", "--config", str(etc / "containerd.toml")], "ready_socket": socket},
            {
                "name": "kubelet",
                "argv": [
                    str(binaries["kubelet"]),
                    f"--config={etc / 'kubelet.json'}",
                    f"--kubeconfig={etc / 'kubelet.kubeconfig'}",
                    f"--hostname-override={node.name}",
                    f"--node-ip={node.ip}",
                    f"--node-labels=topology.kubernetes.io/zone={node.zone},topology.kubernetes.io/region={layout.REGION}",
                ],
            },
            {"name": "kube-proxy", "argv": [str(binaries["kube-proxy"]), f"--config={etc / 'kube-proxy.json'}"]},
        ],
    }
    spec_path = root / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return spec_path


def start_agent(node: Node, state: Path, spec: Path) -> int:
    log = (node.dir(state) / "logs" / "agent.log").open("ab")
    agent = subprocess.Popen(
        [sys.executable, "-m", "tools.cluster.node_agent", str(spec)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return agent.pid


def _cgroup_mounts() -> list[dict[str, str]]:
    """The host's cgroup mounts, to be mounted again inside the node's cgroup namespace."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        fstype, _source, options = right.split()[:3]
        if fstype in {"cgroup", "cgroup2"}:
            opts = ",".join(o for o in options.split(",") if o not in {"rw", "ro"}) or "rw"
            mounts.append({"target": left.split()[4], "fstype": fstype, "options": opts})
    return mounts


def _containerd_config(node: Node, state: Path) -> str:
    root = node.dir(state)
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""# containerd for {node.name} (written by tools/cluster/node.py)
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd-opt"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  tolerate_missing_hugetlb_controller = true
  disable_apparmor = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{root / "etc" / "cni"}"

[{cri}.registry]
  config_path = "{root / "etc" / "certs.d"}"
"""


def _write_registry_mirrors(certs_d: Path) -> None:
    registry = f"http://{layout.REGISTRY_SERVICE_IP}:{layout.REGISTRY_PORT}"
    for host in layout.MIRRORED_REGISTRIES:
        directory = certs_d / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(
            f"# {host} is served by the in-cluster registry only: nothing is pulled from outside\n"
            f'server = "{registry}"\n\n[host."{registry}"]\n  capabilities = ["pull", "resolve"]\n'
        )


def _kubelet_config(node: Node, state: Path) -> dict[str, Any]:
    pki_dir = state / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki_dir / f"kubelet-serving-{node.name}.crt"),
        "tlsPrivateKeyFile": str(pki_dir / f"kubelet-serving-{node.name}.key"),
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "clusterDNS": [layout.DNS_SERVICE_IP],
        "clusterDomain": layout.CLUSTER_DOMAIN,
        "resolvConf": str(node.dir(state) / "etc" / "resolv.conf"),
        # cgroup v1 without systemd; the node's cgroup namespace makes "/" our own subtree
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "protectKernelDefaults": True,  # check the tunables (bound per node), never write them
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE to lower it
        "failSwapOn": True,
        "volumePluginDir": str(node.dir(state) / "volume-plugins"),
        "serializeImagePulls": False,
        # Every node's "disk" is the host's one filesystem, shared with everything else on
        # it: a percentage of it says nothing about a node. Evict only when it is really
        # nearly full, and never garbage-collect images, as the add-ons' are preloaded and
        # cannot be pulled again.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1Gi",
            "imagefs.available": "1Gi",
            "nodefs.inodesFree": "5%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def _kube_proxy_config(node: Node, etc: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(etc / "kube-proxy.kubeconfig")},
        "hostnameOverride": node.name,
        "mode": "nftables",
        "clusterCIDR": layout.POD_CIDR,
        "metricsBindAddress": "127.0.0.1:10249",
        # 0: leave nf_conntrack_max alone (a global sysctl) and the per-namespace timeouts as they are
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
