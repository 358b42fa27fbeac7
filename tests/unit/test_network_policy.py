"""NetworkPolicies as rendered, dev and prod, judged by an evaluator of Kubernetes'
NetworkPolicy semantics (tests/netpol.py): every pod is isolated both ways, every
connection the platform makes (read from the rendered env, args and config files, not
restated here) is allowed, and connections it must not make are denied."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import kubernetes_validate
import pytest

import platform_flows
from components import postgres_ha
from settings import SettingsError
from tests import netpol
from tests.conftest import render_stack
from tests.netpol import Endpoint, Policies
from tools import config_reference

RELEASE = "ai-infra"

# Endpoints outside the stack's namespace.
PROMETHEUS = netpol.pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}, ip="10.245.0.10")
COREDNS = netpol.pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, ip="10.245.1.10")
API_SERVER = netpol.address("kube-apiserver", "192.0.2.10")
INTERNET = netpol.address("internet", "203.0.113.7")
OUTSIDE_CLIENT = netpol.address("browser", "198.51.100.23")
OTHER_NAMESPACE_POD = netpol.pod("intruder", "default", {"app.kubernetes.io/name": "backend"}, ip="10.245.2.10")


@dataclass
class World:
    """One render: its objects, its policies and one pod per workload."""

    objects: list[dict]
    policies: Policies
    pods: list[Endpoint]

    def pod(self, name: str) -> Endpoint:
        """The pod of workload ``Kind/name``; a trailing ``*`` matches a name prefix
        (the Redis Jobs carry a topology hash)."""
        found = [p for p in self.pods if p.name == name or (name.endswith("*") and p.name.startswith(name[:-1]))]
        assert found, f"no workload {name}; have {[p.name for p in self.pods]}"
        return found[0]

    def has(self, name: str) -> bool:
        return any(p.name == name or (name.endswith("*") and p.name.startswith(name[:-1])) for p in self.pods)

    def workload(self, name: str) -> dict:
        kind, _, obj_name = name.split("#", 1)[0].partition("/")
        return next(o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == obj_name)

    def backends(self, host: str, port: int) -> list[tuple[Endpoint, int]]:
        """The pods (and container port) a client reaches at ``host:port``: a Service
        name, or a StatefulSet pod's name under its headless Service."""
        labels = host.removesuffix(".svc.cluster.local").split(".")
        service_name, namespace = (labels[-2], labels[-1]) if len(labels) >= 2 else (labels[0], None)
        services = [
            o
            for o in self.objects
            if o["kind"] == "Service"
            and o["metadata"]["name"] == service_name
            and (namespace is None or o["metadata"]["namespace"] == namespace)
        ]
        assert len(services) == 1, f"{host}: no Service {service_name}"
        service = services[0]
        entry = next(p for p in service["spec"]["ports"] if p["port"] == port)
        found = []
        for candidate in self.pods:
            if candidate.namespace != service["metadata"]["namespace"]:
                continue
            if not netpol.selector_matches({"matchLabels": service["spec"]["selector"]}, candidate.labels):
                continue
            target = entry.get("targetPort", port)
            if isinstance(target, str):
                if target not in candidate.named_ports:
                    continue  # no such container port: not an endpoint of the Service
                target = candidate.named_ports[target][0]
            found.append((candidate, target))
        assert found, f"{host}:{port} reaches no pod"
        return found


def world(stack: str, *overrides: str) -> World:
    objects = render_stack(stack, *overrides).objects
    return World(objects, Policies(objects), with_runtime_labels(netpol.workload_endpoints(objects)))


def with_runtime_labels(pods: list[Endpoint]) -> list[Endpoint]:
    """Patroni labels its pods with their role at run time (the primary and replica
    Services select on it): each Patroni pod becomes a primary and a replica."""
    result = []
    for pod in pods:
        if pod.name != PATRONI:
            result.append(pod)
            continue
        for suffix, role in (("", postgres_ha.LEADER_LABEL_VALUE), (REPLICA_SUFFIX, postgres_ha.FOLLOWER_LABEL_VALUE)):
            labels = {**pod.labels, postgres_ha.ROLE_LABEL: role}
            ip = pod.ip if not suffix else pod.ip.rsplit(".", 1)[0] + ".249"
            result.append(dataclasses.replace(pod, name=pod.name + suffix, labels=labels, ip=ip))
    return result


def env_of(w: World, workload: str) -> dict[str, str]:
    template = netpol.pod_templates([w.workload(workload)])
    _, pod_template = next(template)
    containers = pod_template["spec"]["containers"] + pod_template["spec"].get("initContainers", [])
    return {e["name"]: e["value"] for c in containers for e in c.get("env", []) if "value" in e}


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def blocked(w: World, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> str:
    egress = w.policies.egress_allows(source, destination, port, protocol)
    ingress = w.policies.ingress_allows(source, destination, port, protocol)
    verdict = {True: "ok", False: "DENIED"}
    return f"{source.name} -> {destination.name}:{port}/{protocol} (egress {verdict[egress]}, ingress {verdict[ingress]})"


def assert_allowed(w: World, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> None:
    assert w.policies.allows(source, destination, port, protocol), blocked(w, source, destination, port, protocol)


def assert_denied(w: World, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> None:
    assert not w.policies.allows(source, destination, port, protocol), f"allowed: {source.name} -> {destination.name}:{port}"


PATRONI = "StatefulSet/ai-infra-patroni"
REPLICA_SUFFIX = "#replica"  # the same StatefulSet's pod once Patroni labels it a replica
REDIS = "StatefulSet/ai-infra-redis-cluster"
REDIS_JOBS = ("Job/ai-infra-redis-cluster-preflight-*", "Job/ai-infra-redis-cluster-reconcile-*")
BACKEND = "Deployment/ai-infra-backend"
FRONTEND = "Deployment/ai-infra-frontend"
NGINX = "Deployment/ai-infra-nginx"
EXPORTER = "Deployment/ai-infra-kafka-exporter"
UI = "Deployment/ai-infra-kafka-ui"


# --- isolation -----------------------------------------------------------------------------


def test_every_pod_is_isolated_for_ingress_and_egress(stack):
    w = world(stack)
    assert len(w.pods) >= 8
    for pod in w.pods:
        for direction in ("Ingress", "Egress"):
            assert w.policies.selecting(pod, direction), f"{pod.name} is not isolated for {direction}"


def test_every_pod_has_a_policy_of_its_own(stack):
    """Beyond the namespace-wide deny: each workload's flows were thought through. A new
    workload without a flow in components/network_policy.py fails here."""
    w = world(stack)
    for pod in w.pods:
        own = [p for p in w.policies.selecting(pod, "Ingress") if p["spec"]["podSelector"]]
        assert len(own) == 1, f"{pod.name}: policies of its own: {[p['metadata']['name'] for p in own]}"
        assert set(own[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_every_policy_of_a_group_selects_a_pod(stack):
    """A selector that drifted from the pods' labels would leave the pods denied."""
    w = world(stack)
    for policy in w.policies.policies:
        if policy["spec"]["podSelector"]:
            assert any(netpol.selector_matches(policy["spec"]["podSelector"], p.labels) for p in w.pods), (
                f"{policy['metadata']['name']} selects no pod"
            )


def test_the_namespace_denies_by_default(stack):
    w = world(stack)
    deny = next(p for p in w.policies.policies if p["metadata"]["name"] == f"{RELEASE}-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    stranger = netpol.pod("debug", w.pod(BACKEND).namespace or "", {"run": "debug"}, ip="10.244.200.1")
    assert_denied(w, stranger, w.pod(PATRONI), 5432)
    assert_denied(w, w.pod(BACKEND), stranger, 8080)
    assert_denied(w, stranger, INTERNET, 443)


# --- what the platform connects to, read from the rendered objects ---------------------------


def test_every_pod_resolves_names(stack):
    w = world(stack)
    for pod in w.pods:
        for protocol in ("UDP", "TCP"):
            assert_allowed(w, pod, COREDNS, 53, protocol)


def test_dns_is_the_cluster_dns_only(stack):
    w = world(stack)
    other_dns = netpol.pod("dns", "kube-system", {"k8s-app": "something-else"}, ip="10.245.1.11")
    assert_denied(w, w.pod(BACKEND), other_dns, 53, "UDP")
    assert_denied(w, w.pod(BACKEND), INTERNET, 53, "UDP")


def test_backend_reaches_what_its_env_names(stack):
    w = world(stack)
    backend, env = w.pod(BACKEND), env_of(w, BACKEND)
    targets = [
        (env["DB_HOST"], int(env["DB_PORT"])),
        (render_stack(stack).outputs["postgresReplicaHost"], int(env["DB_PORT"])),
        (env["REDIS_HOST"], int(env["REDIS_PORT"])),
        # A cluster client follows MOVED redirects to every node.
        (f"{RELEASE}-redis-cluster-headless.{backend.namespace}.svc.cluster.local", int(env["REDIS_PORT"])),
        host_port(env["KAFKA_BOOTSTRAP_SERVERS"]),
        # ...and then each broker at its advertised address.
        (f"{RELEASE}-kafka-headless.{backend.namespace}.svc.cluster.local", host_port(env["KAFKA_BOOTSTRAP_SERVERS"])[1]),
    ]
    for host, port in targets:
        for destination, target in w.backends(host, port):
            assert_allowed(w, backend, destination, target)


def test_patroni_members_reach_each_other_and_the_api(stack):
    w = world(stack)
    patroni = w.pod(PATRONI)
    env = env_of(w, PATRONI)
    replica = w.pod(PATRONI + REPLICA_SUFFIX)
    for key in ("PATRONI_POSTGRESQL_CONNECT_ADDRESS", "PATRONI_RESTAPI_CONNECT_ADDRESS"):
        port = host_port(env[key])[1]
        assert_allowed(w, replica, patroni, port)  # streaming and cloning from the leader; its REST API
        assert_allowed(w, patroni, replica, port)  # the leader asks members' REST API (failover, sync)
    for port in platform_flows.API_SERVER_PORTS:
        assert_allowed(w, patroni, API_SERVER, port)


def test_only_pods_with_an_api_token_reach_the_api(stack):
    """Patroni mounts its token (Kubernetes is its DCS); nothing else does, and nothing
    else may reach the API server, the Redis Jobs included (they use redis-cli only)."""
    w = world(stack)
    for pod in w.pods:
        _, template = next(netpol.pod_templates([w.workload(pod.name)]))
        mounts_token = template["spec"].get("automountServiceAccountToken", True)
        for port in platform_flows.API_SERVER_PORTS:
            assert w.policies.allows(pod, API_SERVER, port) == mounts_token, f"{pod.name}: token {mounts_token}"
    assert any(w.policies.allows(pod, API_SERVER, 443) for pod in w.pods)


def test_redis_nodes_and_jobs(stack):
    w = world(stack)
    redis = w.pod(REDIS)
    ports = {name: number for name, (number, _) in redis.named_ports.items()}
    assert_allowed(w, redis, redis, ports["tcp-redis"])
    assert_allowed(w, redis, redis, ports["tcp-redis-bus"])
    for job_name in REDIS_JOBS:
        job = w.pod(job_name)
        job_env = env_of(w, job.name)
        host = job_env["REDIS_NODE_HOST_TEMPLATE"].replace("%d", "0")
        for destination, target in w.backends(host, int(job_env["REDIS_PORT"])):
            assert_allowed(w, job, destination, target)
        assert_denied(w, job, redis, ports["tcp-redis-bus"])


def test_kafka_nodes_reach_the_quorum_and_each_other(stack):
    w = world(stack)
    for config in (o for o in w.objects if o["kind"] == "ConfigMap" and "server.properties" in o.get("data", {})):
        properties = config["data"]["server.properties"]
        voters = _group(r"(?m)^controller\.quorum\.voters=(.+)$", properties).split(",")
        role = config["metadata"]["name"].removesuffix("-config")
        node = w.pod(f"StatefulSet/{role}")
        for voter in voters:
            host, port = host_port(voter.split("@", 1)[1])
            for destination, target in w.backends(host, port):
                assert_allowed(w, node, destination, target)
        if "advertised.listeners" in properties:  # a broker: replicates from the other brokers
            port = int(_group(r"(?m)^listeners=.*BROKER://:(\d+)", properties))
            assert_allowed(w, node, node, port)


def test_kafka_clients_reach_the_brokers(stack):
    w = world(stack)
    clients = {EXPORTER: None, UI: "KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"}
    checked = 0
    for name, env_key in clients.items():
        if not w.has(name):
            continue
        container = w.workload(name)["spec"]["template"]["spec"]["containers"][0]
        if env_key is None:
            bootstrap = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--kafka.server="))
        else:
            bootstrap = next(e["value"] for e in container["env"] if e["name"] == env_key)
        host, port = host_port(bootstrap)
        namespace = w.pod(name).namespace
        for target_host in (host, f"{RELEASE}-kafka-headless.{namespace}.svc.cluster.local"):
            for destination, target in w.backends(target_host, port):
                assert_allowed(w, w.pod(name), destination, target)
        checked += 1
    assert checked == (2 if stack == "prod" else 1)


def test_nginx_is_the_entry_point(stack):
    w = world(stack)
    nginx = w.pod(NGINX)
    for port_name in ("http", "https"):
        if port_name in nginx.named_ports:
            assert_allowed(w, OUTSIDE_CLIENT, nginx, nginx.named_ports[port_name][0])
    for app in (FRONTEND, BACKEND):
        destination = w.pod(app)
        assert_allowed(w, nginx, destination, destination.named_ports["http"][0])
        assert_denied(w, OUTSIDE_CLIENT, destination, destination.named_ports["http"][0])
    if stack == "prod":
        assert_allowed(w, OUTSIDE_CLIENT, nginx, 443)


def _metrics_targets(w: World) -> list[tuple[Endpoint, int, str]]:
    """Every metrics endpoint the rendered objects declare: Services annotated for
    Prometheus, ServiceMonitor and PodMonitor endpoints, Patroni's REST API (/metrics)
    and the backend's http port (/metrics)."""
    found: list[tuple[Endpoint, int, str]] = []
    services = [o for o in w.objects if o["kind"] == "Service"]

    def through(service: dict, port: int, why: str) -> None:
        host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
        found.extend((destination, target, why) for destination, target in w.backends(host, port))

    for service in services:
        port = (service["metadata"].get("annotations") or {}).get("prometheus.io/port")
        if port:
            through(service, int(port), f"Service {service['metadata']['name']}")
    for monitor in (o for o in w.objects if o["kind"] == "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            for service in services:
                if netpol.selector_matches(monitor["spec"]["selector"], service["metadata"].get("labels", {})):
                    for entry in service["spec"]["ports"]:
                        if entry.get("name") == endpoint["port"]:
                            through(service, entry["port"], f"ServiceMonitor {monitor['metadata']['name']}")
    for monitor in (o for o in w.objects if o["kind"] == "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for pod in w.pods:
                if netpol.selector_matches(monitor["spec"]["selector"], pod.labels) and endpoint.get("port") in pod.named_ports:
                    found.append((pod, pod.named_ports[endpoint["port"]][0], f"PodMonitor {monitor['metadata']['name']}"))
    patroni, backend = w.pod(PATRONI), w.pod(BACKEND)
    found.append((patroni, patroni.named_ports["patroni"][0], "Patroni /metrics"))
    found.append((backend, backend.named_ports["http"][0], "backend /metrics"))
    return found


@pytest.mark.parametrize("monitoring", ["false", "true"])
def test_monitoring_reaches_every_metrics_port(stack, monitoring):
    w = world(stack, f"monitoring.enabled={monitoring}")
    targets = _metrics_targets(w)
    ports = {port for _, port, _ in targets}
    assert {8008, 9121, 9308, 8082} <= ports
    for destination, port, why in targets:
        assert w.policies.allows(PROMETHEUS, destination, port), f"{why}: {blocked(w, PROMETHEUS, destination, port)}"


def test_the_monitoring_namespace_is_configurable(stack):
    w = world(stack, "monitoring.namespace=observability")
    elsewhere = netpol.pod("prometheus", "observability", {"app": "prometheus"}, ip="10.245.3.10")
    assert_allowed(w, elsewhere, w.pod(PATRONI), 8008)
    assert_denied(w, PROMETHEUS, w.pod(PATRONI), 8008)


@pytest.mark.parametrize("destination", ["pvc", "s3"])
def test_backups_reach_what_they_back_up(stack, destination):
    overrides = ["backup.enabled=true", f"backup.destination={destination}"]
    if destination == "s3":
        overrides += [
            "backup.s3.bucket=backups",
            "backup.s3.credentialsSecret=s3-keys",
            "backup.s3.endpoint=https://minio.example:9000",
        ]
    w = world(stack, *overrides)
    dump, snapshot = w.pod("CronJob/ai-infra-backup-postgres"), w.pod("CronJob/ai-infra-backup-redis")
    env = env_of(w, dump.name)
    for target, port in w.backends(env["PGHOST"], int(env["PGPORT"])):
        assert_allowed(w, dump, target, port)
    env = env_of(w, snapshot.name)
    for target, port in w.backends(env["REDIS_SEED_HOST"], int(env["REDIS_PORT"])):
        assert_allowed(w, snapshot, target, port)
    redis = w.pod(REDIS)
    assert_allowed(w, snapshot, redis, redis.named_ports["tcp-redis"][0])  # --rdb from every master
    assert_denied(w, snapshot, redis, redis.named_ports["tcp-redis-bus"][0])
    assert_denied(w, dump, redis, redis.named_ports["tcp-redis"][0])
    assert_denied(w, snapshot, w.pod(PATRONI), 5432)
    store = netpol.address("minio", "203.0.113.50")
    for job in (dump, snapshot):
        assert w.policies.allows(job, store, 9000) == (destination == "s3")
        assert_denied(w, job, store, 22)
        assert_denied(w, job, API_SERVER, 443)


# --- what it must not do ----------------------------------------------------------------------


def test_connections_the_platform_must_not_make(stack):
    w = world(stack)
    patroni, redis, backend, frontend = w.pod(PATRONI), w.pod(REDIS), w.pod(BACKEND), w.pod(FRONTEND)
    controllers = w.pod("StatefulSet/ai-infra-kafka-controller") if stack == "prod" else w.pod("StatefulSet/ai-infra-kafka")
    assert_denied(w, frontend, patroni, 5432)
    assert_denied(w, backend, patroni, 8008)
    assert_denied(w, backend, redis, 16379)
    assert_denied(w, backend, controllers, 9093)
    assert_denied(w, OUTSIDE_CLIENT, backend, 8082)
    assert_denied(w, OUTSIDE_CLIENT, patroni, 5432)
    assert_denied(w, patroni, INTERNET, 80)
    assert_denied(w, backend, INTERNET, 443)
    assert_denied(w, PROMETHEUS, patroni, 5432)
    assert_denied(w, PROMETHEUS, redis, 6379)
    assert_denied(w, OTHER_NAMESPACE_POD, patroni, 5432)
    assert_denied(w, OTHER_NAMESPACE_POD, redis, 6379)
    assert_denied(w, w.pod(NGINX), patroni, 5432)
    assert_denied(w, w.pod(EXPORTER), patroni, 5432)
    assert_denied(w, w.pod(EXPORTER), controllers, 9093)
    assert_denied(w, w.pod(REDIS_JOBS[1]), patroni, 5432)
    assert_denied(w, redis, patroni, 5432)
    if stack == "prod":
        ui = w.pod(UI)
        assert_denied(w, ui, patroni, 5432)
        assert_denied(w, ui, controllers, 9093)
        assert_denied(w, OUTSIDE_CLIENT, ui, 8080)
        assert_denied(w, backend, ui, 8080)
        assert_allowed(w, w.pod(NGINX), ui, 8080)
        broker = w.pod("StatefulSet/ai-infra-kafka")
        assert_denied(w, controllers, broker, 9092)  # KRaft controllers never call brokers


# --- settings ------------------------------------------------------------------------------


def test_disabled_renders_no_policy(stack):
    objects = render_stack(stack, "networkPolicy.enabled=false").objects
    assert [o for o in objects if o["kind"] == "NetworkPolicy"] == []
    assert [o for o in render_stack(stack).objects if o["kind"] == "NetworkPolicy"]


def test_api_server_cidrs_narrow_patroni_egress(stack):
    w = world(stack, 'networkPolicy.apiServerCidrs=["192.0.2.0/28"]')
    patroni = w.pod(PATRONI)
    assert_allowed(w, patroni, API_SERVER, 6443)
    assert_denied(w, patroni, INTERNET, 443)


def test_backend_egress_cidrs(stack):
    assert_denied(world(stack), world(stack).pod(BACKEND), INTERNET, 443)
    w = world(stack, 'networkPolicy.backendEgressCidrs=["203.0.113.0/24"]')
    assert_allowed(w, w.pod(BACKEND), INTERNET, 443)
    assert_denied(w, w.pod(FRONTEND), INTERNET, 443)
    assert_denied(w, w.pod(BACKEND), netpol.address("elsewhere", "198.51.100.1"), 443)


def test_dns_selector_is_configurable(stack):
    w = world(stack, "networkPolicy.dnsNamespace=dns", 'networkPolicy.dnsPodLabels={"app": "coredns"}')
    moved = netpol.pod("coredns", "dns", {"app": "coredns"}, ip="10.245.4.10")
    assert_allowed(w, w.pod(BACKEND), moved, 53, "UDP")
    assert_denied(w, w.pod(BACKEND), COREDNS, 53, "UDP")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("networkPolicy.apiServerCidrs=[]", "networkPolicy.apiServerCidrs"),
        ('networkPolicy.apiServerCidrs=["10.0.0.1/8"]', "networkPolicy.apiServerCidrs"),
        ('networkPolicy.backendEgressCidrs=["not-a-cidr"]', "networkPolicy.backendEgressCidrs"),
        ("networkPolicy.dnsPodLabels={}", "networkPolicy.dnsPodLabels"),
    ],
)
def test_bad_settings_are_refused(override, key):
    with pytest.raises(SettingsError) as caught:
        render_stack("prod", override)
    assert [problem.key for problem in caught.value.problems] == [key]


@pytest.mark.parametrize(
    "overrides",
    [
        ('networkPolicy.backendEgressCidrs=["203.0.113.0/24", "2001:db8::/32"]',),
        ("kafka.ui.enabled=false", "kafka.exporter.enabled=false", "redisCluster.exporter.enabled=false"),
        ("patroni.enabled=false", "redisCluster.enabled=false", "kafka.enabled=false"),
    ],
)
def test_variants_validate_and_stay_isolated(overrides):
    objects = render_stack("prod", *overrides).objects
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for policy in policies:
        kubernetes_validate.validate(policy, "1.30.0", strict=True)
    w = World(objects, Policies(objects), with_runtime_labels(netpol.workload_endpoints(objects)))
    for pod in w.pods:
        own = [p for p in w.policies.selecting(pod, "Egress") if p["spec"]["podSelector"]]
        assert len(own) == 1, pod.name
    assert len(policies) == 2 + sum(1 for p in policies if p["spec"]["podSelector"])


def test_the_readme_flow_table_lists_every_flow_of_its_stack():
    stack, overrides = config_reference.FLOW_TABLE_STACK
    flows = render_stack(stack, *overrides).flows
    table = config_reference.flow_table()
    assert table.count("\n") == len(flows) + 2
    assert "| backend | patroni | 5432/TCP |" in table
    assert "| backend | networkPolicy.backendEgressCidrs | any |" in table


# --- the evaluator itself ------------------------------------------------------------------


def _policy(name: str, spec: dict, namespace: str = "app") -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


A = netpol.pod("a", "app", {"role": "a"}, ip="10.0.0.1")
B = netpol.pod("b", "app", {"role": "b"}, ip="10.0.0.2", named_ports={"web": (8080, "TCP")})
C_ELSEWHERE = netpol.pod("c", "other", {"role": "a"}, ip="10.1.0.1", namespace_labels={"team": "x"})


def test_evaluator_non_isolated_pods_allow_everything():
    assert Policies([]).allows(A, B, 1)
    only_ingress = Policies([_policy("i", {"podSelector": {"matchLabels": {"role": "b"}}, "ingress": []})])
    assert not only_ingress.allows(A, B, 1)
    assert only_ingress.allows(B, A, 1)  # policyTypes defaults to Ingress only


def test_evaluator_peers_and_ports():
    policies = Policies(
        [
            _policy(
                "b",
                {
                    "podSelector": {"matchLabels": {"role": "b"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"from": [{"podSelector": {"matchLabels": {"role": "a"}}}], "ports": [{"port": "web"}]},
                        {"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {}}]},
                        {
                            "from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                            "ports": [{"port": 9000, "endPort": 9010}],
                        },
                    ],
                },
            )
        ]
    )
    assert policies.allows(A, B, 8080)  # named port resolved on the destination
    assert not policies.allows(A, B, 8081)
    assert not policies.allows(A, B, 8080, "UDP")
    assert policies.allows(C_ELSEWHERE, B, 1)  # namespaceSelector AND podSelector
    outside_ns = netpol.pod("d", "third", {"role": "a"}, ip="10.2.0.1")
    assert not policies.allows(outside_ns, B, 8080)  # a podSelector alone means the policy's namespace
    assert policies.allows(netpol.address("x", "192.0.2.5"), B, 9005)
    assert not policies.allows(netpol.address("x", "192.0.2.200"), B, 9005)  # except
    assert not policies.allows(netpol.address("x", "192.0.2.5"), B, 9011)


def test_evaluator_match_expressions():
    selector = {"matchLabels": {"x": "1"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["j"]}]}
    assert netpol.selector_matches(selector, {"x": "1", "c": "j"})
    assert not netpol.selector_matches(selector, {"x": "1", "c": "k"})
    assert not netpol.selector_matches(selector, {"x": "1"})
    assert netpol.selector_matches({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, {"x": "1"})
    assert not netpol.selector_matches({"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["j"]}]}, {"c": "j"})


def _group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s match in ``text``; fails the test when there is none."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found"
    return match.group(1)
