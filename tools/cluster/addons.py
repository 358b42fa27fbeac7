"""The add-ons a real cluster gives this platform, as Kubernetes objects (JSON for kubectl).

- CoreDNS (``kube-dns`` at the kubelets' clusterDNS), cluster DNS only: there is no outside
  to forward to;
- the in-cluster OCI registry (the distribution project's ``registry``), Service
  ``registry.kube-system`` at a fixed ClusterIP that every node's containerd mirrors every
  registry name to;
- rancher's local-path-provisioner behind the default StorageClass ``standard``, as kind
  ships it (volume expansion: not supported, so the class says so);
- metrics-server behind ``metrics.k8s.io``, for HPAs and ``kubectl top``;
- kube-router's NetworkPolicy controller (firewall only: iptables + ipset; routing and
  service proxying stay with the bridge CNI and kube-proxy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.cluster import layout
from tools.cluster.images import ADDON_IMAGES

Obj = dict[str, Any]
SYSTEM = "kube-system"
# CoreDNS pods carry k8s-app=kube-dns, as kubeadm, kind and the managed clusters label them:
# NetworkPolicies that allow DNS (this platform's among them) select them by it.
DNS_APP = "kube-dns"


def _image(name: str) -> str:
    return next(i.ref for i in ADDON_IMAGES if i.name == name)


def _meta(name: str, namespace: str | None = SYSTEM, **labels: str) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _restricted(user: int) -> tuple[Obj, Obj]:
    """Pod and container security contexts that pass the restricted Pod Security level."""
    pod = {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    return pod, container


def _rbac(name: str, namespace: str, rules: list[Obj], role_name: str | None = None) -> list[Obj]:
    role = role_name or name
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(role, None), "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(role, None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _deployment(
    name: str, namespace: str, pod_spec: Obj, *, replicas: int = 1, strategy: str = "RollingUpdate", app: str | None = None
) -> Obj:
    labels = {"k8s-app": app or name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, **labels),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": strategy},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _service(name: str, namespace: str, cluster_ip: str | None, ports: list[Obj], selector: str | None = None) -> Obj:
    spec: Obj = {"selector": {"k8s-app": selector or name}, "ports": ports}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, **{"k8s-app": selector or name}),
        "spec": spec,
    }


def bootstrap() -> list[Obj]:
    """What kubeadm creates before any add-on: the apiserver's access to kubelets."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("kube-apiserver-kubelet-client", None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kubelet-api-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kube-apiserver-kubelet-client"}],
        }
    ]


def coredns() -> list[Obj]:
    corefile = f""".:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {layout.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
    reload
}}
"""
    pod_sc, container_sc = _restricted(65532)
    # port 53 without a capability: the pod's own unprivileged-port floor (a namespaced sysctl)
    pod_sc["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}]
    pod = {
        "serviceAccountName": "coredns",
        "priorityClassName": "system-cluster-critical",
        "dnsPolicy": "Default",
        "securityContext": pod_sc,
        "affinity": _spread(DNS_APP),
        "containers": [
            {
                "name": "coredns",
                "image": _image("coredns"),
                "imagePullPolicy": "IfNotPresent",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 10},
                "securityContext": container_sc,
                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
    }
    rules = [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ]
    dns_ports = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    return [
        *_rbac("coredns", SYSTEM, rules, role_name="system:coredns"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns"), "data": {"Corefile": corefile}},
        _deployment("coredns", SYSTEM, pod, replicas=2, app=DNS_APP),
        _service("kube-dns", SYSTEM, layout.DNS_SERVICE_IP, dns_ports, selector=DNS_APP),
    ]


def registry(state: Path) -> list[Obj]:
    config = """version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
    pod_sc, container_sc = _restricted(65532)
    pod = {
        "priorityClassName": "system-cluster-critical",
        "securityContext": pod_sc,
        "containers": [
            {
                "name": "registry",
                "image": _image("registry"),
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "registry", "containerPort": layout.REGISTRY_PORT}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/v2/", "port": layout.REGISTRY_PORT}, "periodSeconds": 2},
                "securityContext": container_sc,
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/distribution", "readOnly": True},
                    {"name": "data", "mountPath": "/var/lib/registry"},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": "registry"}},
            # one directory of the host's filesystem, the same path on every node: the
            # registry's storage outlives its pod wherever it is rescheduled
            {"name": "data", "hostPath": {"path": str(registry_dir(state)), "type": "Directory"}},
        ],
    }
    port = [{"name": "registry", "port": layout.REGISTRY_PORT, "targetPort": layout.REGISTRY_PORT}]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("registry"), "data": {"config.yml": config}},
        _deployment("registry", SYSTEM, pod, strategy="Recreate"),
        _service("registry", SYSTEM, layout.REGISTRY_SERVICE_IP, port),
    ]


def registry_dir(state: Path) -> Path:
    return state / "registry"


LOCAL_PATH_NS = "local-path-storage"
LOCAL_PATH_DIR = "/var/lib/local-path-provisioner"  # inside each node's own /var/lib


def local_path() -> list[Obj]:
    config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [LOCAL_PATH_DIR]}]}
    helper_pod = f"""apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  tolerations:
  - key: node.kubernetes.io/disk-pressure
    operator: Exists
    effect: NoSchedule
  containers:
  - name: helper-pod
    image: {_image("local-path-helper")}
    imagePullPolicy: IfNotPresent
"""
    rules = [
        {"apiGroups": [""], "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["persistentvolumes", "pods"],
         "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
    ]  # fmt: skip
    pod_sc, container_sc = _restricted(65532)
    pod = {
        "serviceAccountName": "local-path-provisioner",
        "priorityClassName": "system-cluster-critical",
        "securityContext": pod_sc,
        "containers": [
            {
                "name": "local-path-provisioner",
                "image": _image("local-path-provisioner"),
                "imagePullPolicy": "IfNotPresent",
                "command": [
                    "/local-path-provisioner",
                    "start",
                    "--config=/etc/config/config.json",
                    "--service-account-name=local-path-provisioner",
                    "--provisioner-name=rancher.io/local-path",
                    f"--helper-image={_image('local-path-helper')}",
                    "--configmap-name=local-path-config",
                ],
                "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": container_sc,
                "volumeMounts": [{"name": "config", "mountPath": "/etc/config", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": "local-path-config"}}],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(LOCAL_PATH_NS, None)},
        *_rbac("local-path-provisioner", LOCAL_PATH_NS, rules),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("local-path-config", LOCAL_PATH_NS),
            "data": {
                "config.json": json.dumps(config, indent=2),
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": helper_pod,
            },
        },
        _deployment("local-path-provisioner", LOCAL_PATH_NS, pod),
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",  # the volume is made on the node the pod lands on
            "reclaimPolicy": "Delete",
            "allowVolumeExpansion": False,  # local-path cannot resize a volume
        },
    ]


def metrics_server() -> list[Obj]:
    rules = [
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
    ]
    pod_sc, container_sc = _restricted(65534)
    pod = {
        "serviceAccountName": "metrics-server",
        "priorityClassName": "system-cluster-critical",
        "securityContext": pod_sc,
        "containers": [
            {
                "name": "metrics-server",
                "image": _image("metrics-server"),
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "--cert-dir=/tmp",
                    "--secure-port=10250",
                    "--kubelet-preferred-address-types=InternalIP",
                    "--kubelet-use-node-status-port",
                    "--metric-resolution=15s",
                    # kubelets serve certificates from the cluster CA, the one every pod is given
                    "--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                ],
                "ports": [{"name": "https", "containerPort": 10250}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10},
                "securityContext": container_sc,
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    rbac = "rbac.authorization.k8s.io"
    return [
        *_rbac("metrics-server", SYSTEM, rules, role_name="system:metrics-server"),
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "system:aggregated-metrics-reader",
                "labels": {
                    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                    "rbac.authorization.k8s.io/aggregate-to-view": "true",
                },
            },
            "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": _meta("metrics-server-auth-reader"),
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": SYSTEM}],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("metrics-server:system:auth-delegator", None),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": SYSTEM}],
        },
        _deployment("metrics-server", SYSTEM, pod),
        _service("metrics-server", SYSTEM, None, [{"name": "https", "port": 443, "targetPort": "https"}]),
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "service": {"name": "metrics-server", "namespace": SYSTEM},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                # as upstream's manifest: metrics-server serves a self-signed certificate
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def kube_router() -> list[Obj]:
    rules = [
        {
            "apiGroups": [""],
            "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
            "verbs": ["list", "get", "watch"],
        },
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "get", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "get", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    labels = {"k8s-app": "kube-router"}
    pod = {
        "serviceAccountName": "kube-router",
        "priorityClassName": "system-node-critical",
        "hostNetwork": True,
        "tolerations": [{"operator": "Exists"}],
        "containers": [
            {
                "name": "kube-router",
                "image": _image("kube-router"),
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    # NetworkPolicy enforcement only: pods are routed by the bridge CNI and
                    # Services by kube-proxy
                    "--run-firewall=true",
                    "--run-router=false",
                    "--run-service-proxy=false",
                    f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                    "--health-port=20244",
                    "--metrics-port=0",
                    "--v=1",
                ],
                "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 20244}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 20244}, "initialDelaySeconds": 30, "periodSeconds": 10},
                "securityContext": {"privileged": True},
                "volumeMounts": [
                    {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                ],
            }
        ],
        "volumes": [
            {"name": "lib-modules", "hostPath": {"path": "/lib/modules", "type": "DirectoryOrCreate"}},
            {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
        ],
    }
    return [
        *_rbac("kube-router", SYSTEM, rules),
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kube-router", SYSTEM, **labels),
            "spec": {
                "selector": {"matchLabels": labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
    ]


def _spread(app: str) -> Obj:
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"k8s-app": app}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def all_addons(state: Path) -> list[Obj]:
    return [*bootstrap(), *coredns(), *registry(state), *local_path(), *metrics_server(), *kube_router()]


# what `cluster up` waits for, as (namespace, kind/name)
WORKLOADS = (
    (SYSTEM, "deployment/coredns"),
    (SYSTEM, "deployment/registry"),
    (LOCAL_PATH_NS, "deployment/local-path-provisioner"),
    (SYSTEM, "deployment/metrics-server"),
    (SYSTEM, "daemonset/kube-router"),
)
