"""Names, addresses and paths of the local cluster: decided here once, read everywhere else.

Everything the cluster owns carries the ``aim-`` prefix (network namespaces, interfaces) or
lives under one cgroup subtree (``ai-infra-matrix-cluster``) and one state directory
(``.cluster/`` in the checkout), so teardown can find all of it and nothing else.

Network (all inside network namespaces this tool creates; the host namespace gets nothing):

    aim-cp          control plane: etcd (loopback), kube-apiserver, controller-manager,
                    scheduler; bridge ``fabric0`` 10.250.0.1/24 joins the nodes. It has no
                    link anywhere else, so a packet with no cluster destination dies here.
    aim-node-N      one per node: containerd, kubelet, kube-proxy, the pods' bridge
                    ``cni0``; eth0 10.250.0.(10+N)/24 on the fabric, default route to aim-cp.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.cluster.util import REPO

PREFIX = "aim-"
CONTROL_PLANE_NETNS = f"{PREFIX}cp"
CGROUP_NAME = "ai-infra-matrix-cluster"
ZONES = ("zone-a", "zone-b", "zone-c")
REGION = "local"

FABRIC_BRIDGE = "fabric0"
FABRIC_PREFIX = "10.250.0"
CONTROL_PLANE_IP = f"{FABRIC_PREFIX}.1"
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first Service IP: the apiserver's in-cluster address
DNS_SERVICE_IP = "10.96.0.10"
REGISTRY_SERVICE_IP = "10.96.0.20"
REGISTRY_PORT = 5000
CLUSTER_DOMAIN = "cluster.local"
# The name pods and users give project images; containerd resolves it (and every public
# registry name) to the in-cluster registry through hosts.toml, never through DNS.
REGISTRY_HOST = f"registry.kube-system.svc.{CLUSTER_DOMAIN}:{REGISTRY_PORT}"
# Every registry name an image reference can carry is mirrored to the in-cluster registry,
# so a missing image fails at once with a local error and nothing tries to leave the cluster.
MIRRORED_REGISTRIES = (
    REGISTRY_HOST,
    "docker.io",
    "registry-1.docker.io",
    "ghcr.io",
    "quay.io",
    "registry.k8s.io",
    "k8s.gcr.io",
    "gcr.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "registry.gitlab.com",
    "localhost",
    "localhost:5000",
)
API_PORT = 6443
PREFERRED_HOST_API_PORT = 16443  # 127.0.0.1 on the host; another free port if taken
PREFERRED_HOST_REGISTRY_PORT = 15000

# Kernel tunables the kubelet insists on (protectKernelDefaults): global sysctls on the
# host, so each node's mount namespace binds a file with the wanted value over them
# instead of letting the kubelet write the host's.
KUBELET_KERNEL_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


def state_dir() -> Path:
    return Path(os.environ.get("AI_INFRA_CLUSTER_STATE", REPO / ".cluster"))


@dataclass(frozen=True)
class Node:
    index: int  # 1-based

    @property
    def name(self) -> str:
        return f"{PREFIX}node-{self.index}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def ip(self) -> str:
        return f"{FABRIC_PREFIX}.{10 + self.index}"

    @property
    def zone(self) -> str:
        return ZONES[(self.index - 1) % len(ZONES)]

    @property
    def fabric_port(self) -> str:
        """The veth end in aim-cp, attached to the fabric bridge."""
        return f"{PREFIX}n{self.index}"

    def dir(self, state: Path) -> Path:
        return state / "nodes" / self.name


@dataclass
class ClusterState:
    """What a running cluster is: written by `up`, read by `status`, `down` and the tests."""

    nodes: int
    api_port: int
    registry_port: int
    cgroup_parents: dict[str, str]  # hierarchy mount -> the cgroup our subtree sits in
    pids: dict[str, int] = field(default_factory=dict)  # control-plane and forwarder processes
    node_agents: dict[str, int] = field(default_factory=dict)
    stopped_nodes: list[str] = field(default_factory=list)  # lost on purpose (`node stop`), not crashed
    started: float = 0.0

    def save(self, state: Path) -> None:
        path = state / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, state: Path) -> ClusterState | None:
        path = state / "state.json"
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError):
            return None


def nodes(count: int) -> list[Node]:
    return [Node(i) for i in range(1, count + 1)]
