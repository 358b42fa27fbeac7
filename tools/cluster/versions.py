"""Every version the local cluster is built from, in one place.

Go modules come from the Go module proxy; Debian packages from the Debian mirror. Where a
version pinned here is not the newest the proxy serves, the comment says why. Changing a
version here changes the cache key of what it builds (``~/.cache/ai-infra-matrix/cluster``).
"""

from __future__ import annotations

# Kubernetes itself: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, kubectl. Served: v1.34.0-4, v1.35.4, v1.36.1, v1.36.3, v1.37.2; v1.36.3 needs
# go 1.26. The kubelet's fallback for runtimes without RuntimeConfig (containerd 1.6) is
# removed in 1.38, so stay on 1.34-1.37.
KUBERNETES = "v1.36.3"

# etcd: 3.6 is the line Kubernetes 1.36 tests against (Debian's 3.4.23 is below the
# apiserver's floor).
ETCD = "v3.6.16"

# CoreDNS, built with only the plugins cluster DNS needs (see gomod.COREDNS_PLUGINS).
COREDNS = "v1.14.7"

# Add-ons, each the component the Kubernetes community uses for the job.
LOCAL_PATH_PROVISIONER = "v0.0.30"  # the dynamic provisioner kind ships
METRICS_SERVER = "v0.9.0"  # resource metrics API for HPAs and `kubectl top`
# NetworkPolicy enforcement. kind's kube-network-policies (v0.8.0 served) queues packets with
# the nftables `queue` statement, and this kernel is built without CONFIG_NFT_QUEUE;
# kube-router's firewall uses iptables + ipset, which the kernel has. Only v2.1.0 is served.
KUBE_ROUTER = "v2.1.0"
DISTRIBUTION = "v3.1.2"  # the distribution project's `registry`, the in-cluster OCI registry

# The pause (sandbox) image: our own static C program, tagged as the kubelet's default.
PAUSE = "3.10"

# The Debian suite every image is built on (mmdebstrap from the Debian mirror, equivalent to
# debian:bookworm-slim), and the suite whose packages the hosts run (containerd 1.6.20,
# runc 1.1.5, containernetworking-plugins 1.1.1, buildah 1.28).
DEBIAN_SUITE = "bookworm"

# Host packages the cluster needs, from Debian. `cluster up` installs what is missing.
HOST_PACKAGES = (
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iproute2",
    "nftables",
    "iptables",
    "ipset",
    "conntrack",
    "util-linux",
    "buildah",
    "mmdebstrap",
    "openssl",
    "busybox-static",
    "gcc",
    "libc6-dev",
)
