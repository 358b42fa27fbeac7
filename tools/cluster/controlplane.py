"""The control plane in network namespace aim-cp: etcd, kube-apiserver, controller-manager, scheduler.

etcd listens only on aim-cp's loopback (nothing else can reach it, so it speaks plain HTTP
there); the apiserver listens on the fabric address the nodes reach and, through the
forwarder, on 127.0.0.1 of the host.
"""

from __future__ import annotations

from pathlib import Path

from tools.cluster import layout, ns, pki
from tools.cluster.util import run

UNIT = "control-plane"


def create_network() -> None:
    """aim-cp with the fabric bridge; its only links are the nodes' veths."""
    cp = layout.CONTROL_PLANE_NETNS
    if ns.netns_inode(cp) is None:
        run(["ip", "netns", "add", cp])
    run(["ip", "-n", cp, "link", "set", "lo", "up"])
    if run(["ip", "-n", cp, "link", "show", layout.FABRIC_BRIDGE], check=False).returncode != 0:
        run(["ip", "-n", cp, "link", "add", layout.FABRIC_BRIDGE, "type", "bridge"])
        run(["ip", "-n", cp, "addr", "add", f"{layout.CONTROL_PLANE_IP}/24", "dev", layout.FABRIC_BRIDGE])
    run(["ip", "-n", cp, "link", "set", layout.FABRIC_BRIDGE, "up"])


def start(state: Path, binaries: dict[str, Path], parents: dict[str, str]) -> dict[str, int]:
    """Start etcd and the apiserver (the caller waits for /readyz before `start_controllers`)."""
    cp = state / "control-plane"
    (cp / "etcd").mkdir(parents=True, exist_ok=True)
    (cp / "etcd").chmod(0o700)
    logs = state / "logs"
    pids = {
        "etcd": _spawn(
            "etcd",
            [
                str(binaries["etcd"]),
                "--name=aim-cp",
                f"--data-dir={cp / 'etcd'}",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=aim-cp=http://127.0.0.1:2380",
                "--listen-metrics-urls=http://127.0.0.1:2381",
                "--quota-backend-bytes=2147483648",
                "--snapshot-count=10000",
            ],
            logs,
            parents,
        )
    }
    p = state / "pki"
    pids["kube-apiserver"] = _spawn(
        "kube-apiserver",
        [
            str(binaries["kube-apiserver"]),
            "--etcd-servers=http://127.0.0.1:2379",
            f"--advertise-address={layout.CONTROL_PLANE_IP}",
            "--bind-address=0.0.0.0",
            f"--secure-port={layout.API_PORT}",
            f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            # logs/exec dial the node's IP, not its name (which only the cluster can resolve)
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--service-account-issuer=https://kubernetes.default.svc.{layout.CLUSTER_DOMAIN}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",  # on top of the defaults, PodSecurity among them
            "--allow-privileged=true",
            # the aggregation layer, for metrics.k8s.io (metrics-server)
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
            # aim-cp runs no kube-proxy: reach aggregated APIs at their endpoints, not their ClusterIP
            "--enable-aggregator-routing=true",
            "--profiling=false",
            "--shutdown-delay-duration=0s",
        ],
        logs,
        parents,
    )
    return pids


def start_controllers(state: Path, binaries: dict[str, Path], parents: dict[str, str]) -> dict[str, int]:
    p = state / "pki"
    server = f"https://127.0.0.1:{layout.API_PORT}"
    cm_config = state / "control-plane" / "controller-manager.kubeconfig"
    cm_config.write_text(pki.kubeconfig(p, "controller-manager", server))
    sched_config = state / "control-plane" / "scheduler.kubeconfig"
    sched_config.write_text(pki.kubeconfig(p, "scheduler", server))
    logs = state / "logs"
    flex = state / "control-plane" / "flexvolume"  # otherwise it creates /usr/libexec/kubernetes on the host
    flex.mkdir(exist_ok=True)
    return {
        "kube-controller-manager": _spawn(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={cm_config}",
                f"--authentication-kubeconfig={cm_config}",
                f"--authorization-kubeconfig={cm_config}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                "--allocate-node-cidrs=true",
                f"--cluster-cidr={layout.POD_CIDR}",
                "--node-cidr-mask-size=24",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                f"--flex-volume-plugin-dir={flex}",
                "--controllers=*,bootstrapsigner,tokencleaner",
                "--profiling=false",
            ],
            logs,
            parents,
        ),
        "kube-scheduler": _spawn(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={sched_config}",
                f"--authentication-kubeconfig={sched_config}",
                f"--authorization-kubeconfig={sched_config}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--profiling=false",
            ],
            logs,
            parents,
        ),
    }


def _spawn(name: str, argv: list[str], logs: Path, parents: dict[str, str]) -> int:
    return ns.spawn(argv, log=logs / f"{name}.log", parents=parents, unit=UNIT, netns=layout.CONTROL_PLANE_NETNS)
