"""DNS, Services across nodes, NetworkPolicy enforcement, and no load balancer."""

from __future__ import annotations

import time
from typing import Any

from tests.cluster.conftest import toolbox_pod
from tests.kube import Cluster, pod_exec, pod_ready

WEB = "mkdir -p /tmp/www && echo hello-from-$(hostname) > /tmp/www/index.html && httpd -f -p 8080 -h /tmp/www"


def _nodes(cluster: Cluster) -> list[str]:
    return sorted(n["metadata"]["name"] for n in cluster.nodes())


def _service(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }


def _fetch(cluster: Cluster, namespace: str, pod: str, url_host: str, port: int = 80) -> tuple[int, str]:
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {url_host} {port}"
    return pod_exec(cluster, namespace, pod, request)


def test_dns_resolves_services_pods_and_other_namespaces(cluster: Cluster, namespace: str) -> None:
    statefulset: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "web",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": toolbox_pod("web", command=WEB) | {"metadata": {"labels": {"app": "web"}}},
        },
    }
    statefulset["spec"]["template"].pop("apiVersion")
    statefulset["spec"]["template"].pop("kind")
    headless = _service("web", "web", clusterIP="None")
    cluster.apply(namespace, statefulset, headless, toolbox_pod("client", command="sleep 3600"))
    cluster.wait(
        "web-0 and client Ready", lambda: pod_ready(cluster, namespace, "web-0") and pod_ready(cluster, namespace, "client")
    )
    web_ip = cluster.get("-n", namespace, "pod", "web-0")["status"]["podIP"]
    names = {
        "kubernetes.default.svc.cluster.local": "10.96.0.1",  # a Service
        f"web-0.web.{namespace}.svc.cluster.local": web_ip,  # a headless StatefulSet pod
        "kube-dns.kube-system.svc.cluster.local": "10.96.0.10",  # a name in another namespace
    }
    for name, address in names.items():
        code, out = pod_exec(cluster, namespace, "client", f"nslookup {name}")
        assert code == 0 and address in out, f"nslookup {name}: expected {address}:\n{out}"
    # a short name through the pod's search path, as applications resolve it (getaddrinfo)
    code, out = pod_exec(cluster, namespace, "client", "echo | nc -w 3 kubernetes.default 443")
    assert code == 0, f"kubernetes.default did not resolve through the search path:\n{out}"
    code, out = pod_exec(cluster, namespace, "client", "nslookup deb.debian.org")
    assert code != 0, f"a name outside the cluster must not resolve (there is no outside):\n{out}"


def test_cluster_ip_service_routes_across_nodes(cluster: Cluster, namespace: str) -> None:
    server_node, client_node = _nodes(cluster)[:2]
    cluster.apply(
        namespace,
        toolbox_pod("server", command=WEB, node=server_node, labels={"app": "server"}),
        toolbox_pod("client", command="sleep 3600", node=client_node),
        _service("server", "server"),
    )
    cluster.wait(
        "server and client Ready", lambda: pod_ready(cluster, namespace, "server") and pod_ready(cluster, namespace, "client")
    )
    cluster_ip = cluster.get("-n", namespace, "service", "server")["spec"]["clusterIP"]
    for target in (cluster_ip, f"server.{namespace}.svc.cluster.local"):
        code, out = _fetch(cluster, namespace, "client", target)
        assert code == 0 and "hello-from-server" in out, f"{client_node} -> {target} -> {server_node}:\n{out}"


def test_network_policy_default_deny_then_allow_exactly_one_flow(cluster: Cluster, namespace: str) -> None:
    nodes = _nodes(cluster)
    cluster.apply(
        namespace,
        toolbox_pod("server", command=WEB, node=nodes[0], labels={"app": "server"}),
        toolbox_pod("allowed", command="sleep 3600", node=nodes[1], labels={"app": "allowed"}),
        toolbox_pod("other", command="sleep 3600", node=nodes[2 % len(nodes)], labels={"app": "other"}),
        _service("server", "server"),
    )
    cluster.wait("pods Ready", lambda: all(pod_ready(cluster, namespace, p) for p in ("server", "allowed", "other")))
    server_ip = cluster.get("-n", namespace, "pod", "server")["status"]["podIP"]
    for client in ("allowed", "other"):
        code, out = _fetch(cluster, namespace, client, server_ip, 8080)
        assert code == 0 and "hello-from-server" in out, f"before any policy, {client} must reach the server:\n{out}"

    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    cluster.apply(namespace, deny)

    def blocked(client: str) -> bool:
        code, _ = _fetch(cluster, namespace, client, server_ip, 8080)
        return code != 0

    cluster.wait("default-deny to drop allowed -> server", lambda: blocked("allowed"), timeout=60)
    assert blocked("other")

    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-allowed-to-server"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "allowed"}}}], "ports": [{"port": 8080}]}],
        },
    }
    cluster.apply(namespace, allow)
    cluster.wait("the allow rule to restore allowed -> server", lambda: not blocked("allowed"), timeout=60)
    time.sleep(2)
    assert blocked("other"), "the allow rule must restore exactly its flow, not other -> server"


def test_load_balancer_service_gets_no_address(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        namespace, toolbox_pod("server", command=WEB, labels={"app": "server"}), _service("public", "server", type="LoadBalancer")
    )
    time.sleep(15)
    service = cluster.get("-n", namespace, "service", "public")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0].get("nodePort"), "a LoadBalancer Service still gets its NodePort"
    assert not service["status"].get("loadBalancer", {}).get("ingress"), "there is no load-balancer controller to give an address"
