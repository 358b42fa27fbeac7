"""PlatformNetworkPolicies: the namespace denies every connection by default, and allows
exactly the flows the platform makes.

The flows are one table (``platform_flows``): who connects to whom, on which ports, and
why. From it every pod group gets one NetworkPolicy holding both what it accepts
(ingress) and what it initiates (egress), so ``kubectl describe netpol ai-infra-patroni-netpol``
shows everything Patroni may do. Two namespace-wide policies complete the set:

- ``<release>-default-deny`` selects every pod for Ingress and Egress with no rule, so a
  pod no flow names (a new workload, a debug pod) can reach nothing and be reached by
  nothing until a flow is added here;
- ``<release>-dns-egress`` lets every pod query the cluster DNS (53 UDP and TCP).

Policies see traffic after a Service's address is translated to a pod's, so every port
below is a container port (nginx 80, backend 8082), not a Service port. Kubelet probes
come from the node and are always allowed; ``kubectl port-forward`` and ``exec`` go
through the kubelet, not the pod network, and are not filtered either. A sidecar talking
to its own pod over 127.0.0.1 (redis_exporter) never leaves the pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as shapes
from components import kafka_kraft, postgres_ha, redis_cluster
from settings import PlatformSettings

# The namespace label every namespace carries (Kubernetes >= 1.21 sets it itself).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DNS_PORT = 53
# The API server's port as the pods see it: 443 is the `kubernetes` Service's port
# (managed control planes often listen on it directly); 6443 is the usual port of the
# endpoints behind it, which is what a policy sees after the Service is translated.
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class Port:
    port: int
    protocol: str = "TCP"

    def spec(self) -> shapes.Obj:
        return {"port": self.port, "protocol": self.protocol}

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Pods:
    """A group of this stack's pods, selected by labels in the stack's namespace."""

    name: str  # names its policy: <release>-<name>-netpol
    match_labels: Mapping[str, str]
    # Extra set-based terms (the Redis Jobs share the Redis pods' name label).
    match_expressions: tuple[shapes.Obj, ...] = ()

    def selector(self) -> shapes.Obj:
        selector: shapes.Obj = {"matchLabels": dict(self.match_labels)}
        if self.match_expressions:
            selector["matchExpressions"] = [dict(term) for term in self.match_expressions]
        return selector

    def peers(self) -> list[shapes.Obj]:
        return [{"podSelector": self.selector()}]


@dataclass(frozen=True)
class Outside:
    """Addresses that are not pods of this namespace: another namespace's pods, CIDRs.
    No peers at all means any address."""

    name: str
    peer_specs: tuple[shapes.Obj, ...] = ()

    def peers(self) -> list[shapes.Obj]:
        return [dict(peer) for peer in self.peer_specs]


@dataclass(frozen=True)
class Flow:
    """``source`` opens connections to ``destination`` on ``ports``. Allowed on both ends:
    the source's egress and the destination's ingress (for a group of this stack)."""

    source: Pods | Outside
    destination: Pods | Outside
    ports: tuple[Port, ...]  # empty: every port
    purpose: str

    def __post_init__(self) -> None:
        if isinstance(self.source, Outside) and isinstance(self.destination, Outside):
            raise ValueError(f"flow {self.purpose!r} has no pod of this stack on either end")


@dataclass(frozen=True)
class PlatformNetworkPoliciesArgs:
    settings: PlatformSettings


@dataclass(frozen=True)
class PodGroups:
    """Every group of pods the stack runs, enabled or not (a flow names only enabled ones)."""

    patroni: Pods
    redis: Pods
    redis_jobs: Pods
    kafka_controllers: Pods | None  # None: the combined nodes vote (dev)
    kafka_brokers: Pods
    kafka_exporter: Pods
    kafka_ui: Pods
    backend: Pods
    frontend: Pods
    nginx: Pods
    backup_postgres: Pods
    backup_redis: Pods


class PlatformNetworkPolicies(pulumi.ComponentResource):
    """The default-deny, DNS and per-group NetworkPolicies of the stack's namespace."""

    policies: list[k8s.networking.v1.NetworkPolicy]
    flows: list[Flow]

    def __init__(self, name: str, args: PlatformNetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:PlatformNetworkPolicies", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        self.flows = platform_flows(settings)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{spec['metadata']['name']}",
                metadata=spec["metadata"],
                spec=spec["spec"],
                opts=child,
            )
            for spec in policy_objects(settings, self.flows)
        ]
        self.register_outputs({"policyNames": [policy.metadata.name for policy in self.policies]})


# --- the flows ---------------------------------------------------------------------------


def pod_groups(settings: PlatformSettings) -> PodGroups:
    """The label selectors of every group, built as the components build their pod labels."""
    release = settings.release_name
    roles = {role.kind: role for role in kafka_kraft.kafka_roles(release, settings.kafka)}
    redis_name = shapes.selector_labels(release, "redis-cluster")
    controllers = roles.get("controller")
    clients = roles.get("broker") or roles["combined"]
    return PodGroups(
        patroni=Pods("patroni", shapes.selector_labels(release, postgres_ha.APP)),
        # The Redis Jobs carry the StatefulSet's name labels; the component label tells
        # the servers ("cache") from the Jobs ("cluster-preflight", "cluster-reconcile").
        redis=Pods("redis-cluster", {**redis_name, "app.kubernetes.io/component": "cache"}),
        redis_jobs=Pods(
            "redis-cluster-jobs",
            redis_name,
            (
                {
                    "key": "app.kubernetes.io/component",
                    "operator": "In",
                    "values": ["cluster-preflight", "cluster-reconcile"],
                },
            ),
        ),
        kafka_controllers=Pods("kafka-controller", dict(controllers.selector)) if controllers else None,
        kafka_brokers=Pods("kafka", dict(clients.selector)),
        kafka_exporter=Pods("kafka-exporter", shapes.selector_labels(release, "kafka-exporter")),
        kafka_ui=Pods("kafka-ui", shapes.selector_labels(release, "kafka-ui")),
        backend=Pods("backend", shapes.selector_labels(release, "backend")),
        frontend=Pods("frontend", shapes.selector_labels(release, "frontend")),
        nginx=Pods("nginx", shapes.selector_labels(release, "nginx")),
        backup_postgres=Pods("backup-postgres", shapes.selector_labels(release, "backup-postgres")),
        backup_redis=Pods("backup-redis", shapes.selector_labels(release, "backup-redis")),
    )


def platform_flows(settings: PlatformSettings) -> list[Flow]:
    """Every connection the enabled parts of the stack make, and nothing else."""
    ends = _Ends.of(settings)
    return [
        *_patroni_flows(settings, ends),
        *_redis_flows(settings, ends),
        *_kafka_flows(settings, ends),
        *_app_flows(settings, ends),
        *_backup_flows(settings, ends),
    ]


@dataclass(frozen=True)
class _Ends:
    """The groups of this stack and the peers outside it that flows name."""

    groups: PodGroups
    monitoring: Outside
    api_server: Outside
    anywhere: Outside

    @classmethod
    def of(cls, settings: PlatformSettings) -> _Ends:
        namespace = settings.monitoring.namespace
        return cls(
            groups=pod_groups(settings),
            monitoring=Outside(
                f"namespace {namespace}", ({"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}},)
            ),
            # The API server is not a pod: its address depends on the cluster (a control-
            # plane node, a cloud endpoint), so it can only be named by address. The default
            # CIDR is any address, but only on the API ports and only for the pods that use
            # the API (networkPolicy.apiServerCidrs narrows it).
            api_server=Outside("the Kubernetes API server", _ip_blocks(settings.network_policy.api_server_cidrs)),
            anywhere=Outside("any address"),
        )


def _patroni_flows(settings: PlatformSettings, ends: _Ends) -> list[Flow]:
    if not settings.patroni.enabled:
        return []
    patroni = ends.groups.patroni
    pg, rest = Port(postgres_ha.POSTGRESQL_PORT), Port(postgres_ha.RESTAPI_PORT)
    flows = [
        Flow(patroni, patroni, (pg, rest), "replicas stream from and clone the leader; members read each other's REST API"),
        Flow(patroni, ends.api_server, tuple(Port(p) for p in API_SERVER_PORTS), "Patroni keeps its leader lock in the API"),
        Flow(ends.monitoring, patroni, (rest,), "Prometheus scrapes Patroni's /metrics"),
    ]
    if settings.backend.enabled:
        flows.append(Flow(ends.groups.backend, patroni, (pg,), "the application's queries (primary and replica Services)"))
    return flows


def _redis_flows(settings: PlatformSettings, ends: _Ends) -> list[Flow]:
    redis_settings = settings.redis_cluster
    if not redis_settings.enabled:
        return []
    redis = ends.groups.redis
    client, bus = Port(redis_settings.port), Port(redis_settings.port + redis_cluster.BUS_PORT_OFFSET)
    flows = [
        Flow(redis, redis, (client, bus), "replication and failover on the client port, gossip on the cluster bus"),
        # The Jobs use redis-cli only and mount no service account token: no API access.
        Flow(ends.groups.redis_jobs, redis, (client,), "the bootstrap/reconcile/preflight Jobs manage the cluster"),
    ]
    if redis_settings.exporter.enabled:
        flows.append(Flow(ends.monitoring, redis, (Port(redis_cluster.EXPORTER_PORT),), "Prometheus scrapes redis_exporter"))
    if settings.backend.enabled:
        flows.append(Flow(ends.groups.backend, redis, (client,), "the application's cache (cluster clients reach every node)"))
    return flows


def _kafka_flows(settings: PlatformSettings, ends: _Ends) -> list[Flow]:
    kafka = settings.kafka
    if not kafka.enabled:
        return []
    groups = ends.groups
    brokers, broker, controller = groups.kafka_brokers, Port(kafka_kraft.BROKER_PORT), Port(kafka_kraft.CONTROLLER_PORT)
    if groups.kafka_controllers is None:
        flows = [Flow(brokers, brokers, (broker, controller), "combined nodes: replication and the KRaft quorum")]
    else:
        # Controllers never open connections to brokers: brokers fetch from the quorum.
        controllers = groups.kafka_controllers
        flows = [
            Flow(controllers, controllers, (controller,), "the KRaft quorum (votes, metadata log)"),
            Flow(brokers, controllers, (controller,), "brokers register and fetch metadata from the quorum"),
            Flow(brokers, brokers, (broker,), "partition replication between brokers"),
        ]
    if settings.backend.enabled:
        flows.append(Flow(groups.backend, brokers, (broker,), "the application's producers and consumers"))
    if kafka.exporter.enabled:
        flows += [
            Flow(groups.kafka_exporter, brokers, (broker,), "kafka-exporter reads topics, partitions and consumer lag"),
            Flow(ends.monitoring, groups.kafka_exporter, (Port(kafka_kraft.EXPORTER_PORT),), "Prometheus scrapes kafka-exporter"),
        ]
    if kafka.ui.enabled:
        flows.append(Flow(groups.kafka_ui, brokers, (broker,), "Kafka UI browses the cluster (read-only)"))
        if settings.nginx.enabled:
            # Not from anywhere: only through the platform's entry point (and through
            # `kubectl port-forward`, which policies do not filter).
            flows.append(
                Flow(groups.nginx, groups.kafka_ui, (Port(kafka_kraft.UI_PORT),), "nginx may publish Kafka UI (login required)")
            )
    return flows


def _app_flows(settings: PlatformSettings, ends: _Ends) -> list[Flow]:
    groups = ends.groups
    flows: list[Flow] = []
    if settings.nginx.enabled:
        service = settings.nginx.service
        ports = [Port(service.target_port)] + ([Port(service.https_target_port)] if service.https_target_port else [])
        flows.append(Flow(ends.anywhere, groups.nginx, tuple(ports), "the platform's entry point, from any client"))
        for app in ("frontend", "backend"):
            app_settings = settings.apps[app]
            if app_settings.enabled:
                port = Port(app_settings.service.target_port)
                flows.append(Flow(groups.nginx, getattr(groups, app), (port,), f"nginx proxies to the {app}"))
    if settings.backend.enabled:
        backend_port = Port(settings.backend.service.target_port)
        flows.append(Flow(ends.monitoring, groups.backend, (backend_port,), "Prometheus scrapes the backend's /metrics"))
        cidrs = settings.network_policy.backend_egress_cidrs
        if cidrs:
            external = Outside("networkPolicy.backendEgressCidrs", _ip_blocks(cidrs))
            flows.append(Flow(groups.backend, external, (), "external services the operator listed"))
    return flows


def _backup_flows(settings: PlatformSettings, ends: _Ends) -> list[Flow]:
    """The CronJobs of components/backups.py: pg_dump, redis-cli --rdb, the S3 upload."""
    backup = settings.backup
    if not backup.enabled:
        return []
    flows: list[Flow] = []
    jobs: list[Pods] = []
    if settings.patroni.enabled and backup.postgres.enabled:
        dump = ends.groups.backup_postgres
        jobs.append(dump)
        flows.append(Flow(dump, ends.groups.patroni, (Port(postgres_ha.POSTGRESQL_PORT),), "the scheduled pg_dump"))
    if settings.redis_cluster.enabled and backup.redis.enabled:
        snapshot = ends.groups.backup_redis
        jobs.append(snapshot)
        port = Port(settings.redis_cluster.port)
        flows.append(Flow(snapshot, ends.groups.redis, (port,), "the scheduled RDB snapshot of every master"))
    if backup.destination == "s3":
        store = Outside(
            "the S3 store (networkPolicy.backupStorageCidrs)", _ip_blocks(settings.network_policy.backup_storage_cidrs)
        )
        flows += [Flow(job, store, (Port(_url_port(backup.s3.endpoint)),), "the upload of the backup") for job in jobs]
    return flows


def policy_objects(settings: PlatformSettings, flows: Sequence[Flow]) -> list[shapes.Obj]:
    """The NetworkPolicies (metadata and spec) for ``flows``: default deny, DNS, then one
    per group of pods of this stack that is deployed."""
    release, namespace = settings.release_name, settings.namespace
    labels = shapes.common_labels(release, "network-policy", "security")
    policy = settings.network_policy
    dns_ports = [Port(DNS_PORT, "UDP").spec(), Port(DNS_PORT, "TCP").spec()]
    objects: list[shapes.Obj] = [
        {
            "metadata": shapes.metadata(f"{release}-default-deny", namespace, labels),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "metadata": shapes.metadata(f"{release}-dns-egress", namespace, labels),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: policy.dns_namespace}},
                                "podSelector": {"matchLabels": dict(policy.dns_pod_labels)},
                            }
                        ],
                        "ports": dns_ports,
                    }
                ],
            },
        },
    ]
    for group in _deployed_groups(settings):
        ingress = [flow for flow in flows if flow.destination == group]
        egress = [flow for flow in flows if flow.source == group]
        objects.append(
            {
                "metadata": shapes.metadata(
                    f"{release}-{group.name}-netpol",
                    namespace,
                    labels,
                    {"ai-infra-matrix/flows": _describe(group, ingress, egress)},
                ),
                "spec": _group_spec(group, ingress, egress),
            }
        )
    return objects


def flow_table(flows: Sequence[Flow]) -> str:
    """The flows as a Markdown table (source, destination, ports, purpose)."""
    rows = ["| from | to | ports | why |", "|---|---|---|---|"]
    for flow in flows:
        ports = ", ".join(str(port) for port in flow.ports) or "any"
        rows.append(f"| {flow.source.name} | {flow.destination.name} | {ports} | {flow.purpose} |")
    return "\n".join(rows) + "\n"


# --- private builders --------------------------------------------------------------------


def _deployed_groups(settings: PlatformSettings) -> list[Pods]:
    groups = pod_groups(settings)
    deployed: list[Pods | None] = []
    if settings.patroni.enabled:
        deployed.append(groups.patroni)
    if settings.redis_cluster.enabled:
        deployed += [groups.redis, groups.redis_jobs]
    if settings.kafka.enabled:
        deployed += [groups.kafka_controllers, groups.kafka_brokers]
        deployed += [groups.kafka_exporter] if settings.kafka.exporter.enabled else []
        deployed += [groups.kafka_ui] if settings.kafka.ui.enabled else []
    deployed += [getattr(groups, app) for app, app_settings in settings.apps.items() if app_settings.enabled]
    if settings.backup.enabled:
        deployed += [groups.backup_postgres] if settings.patroni.enabled and settings.backup.postgres.enabled else []
        deployed += [groups.backup_redis] if settings.redis_cluster.enabled and settings.backup.redis.enabled else []
    return [group for group in deployed if group is not None]


def _group_spec(group: Pods, ingress: Sequence[Flow], egress: Sequence[Flow]) -> shapes.Obj:
    # Both types always: a type without rules denies that direction. Empty rule lists
    # are left out (the provider drops them, which would show as a diff).
    spec: shapes.Obj = {"podSelector": group.selector(), "policyTypes": ["Ingress", "Egress"]}
    if ingress:
        spec["ingress"] = [_rule("from", flow.source, flow.ports) for flow in ingress]
    if egress:
        spec["egress"] = [_rule("to", flow.destination, flow.ports) for flow in egress]
    return spec


def _ip_blocks(cidrs: Sequence[str]) -> tuple[shapes.Obj, ...]:
    return tuple({"ipBlock": {"cidr": cidr}} for cidr in cidrs)


def _url_port(url: str) -> int:
    """The port of an S3 endpoint URL; empty (AWS S3) or https without one: 443."""
    parsed = urlparse(url)
    if parsed.port is not None:
        return parsed.port
    return 80 if parsed.scheme == "http" else 443


def _rule(direction: str, peer: Pods | Outside, ports: tuple[Port, ...]) -> shapes.Obj:
    rule: shapes.Obj = {}
    peers = peer.peers()
    if peers:  # no peers: any address
        rule[direction] = peers
    if ports:  # no ports: every port
        rule["ports"] = [port.spec() for port in ports]
    return rule


def _describe(group: Pods, ingress: Sequence[Flow], egress: Sequence[Flow]) -> str:
    lines = [f"from {flow.source.name} on {_ports(flow)}: {flow.purpose}" for flow in ingress]
    lines += [f"to {flow.destination.name} on {_ports(flow)}: {flow.purpose}" for flow in egress]
    lines.append("to DNS on 53/UDP, 53/TCP (dns-egress); nothing else")
    return "\n".join(lines)


def _ports(flow: Flow) -> str:
    return ", ".join(str(port) for port in flow.ports) or "any port"
