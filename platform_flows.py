"""The platform's flow table: every connection the deployed parts make, and nothing else.

Built by the composition from the components' outputs (their pod groups and ports), so a
flow names exactly the pods a component runs. PlatformNetworkPolicies turns the table
into NetworkPolicies; the README's flow table is generated from it (tools/config_reference.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from components.autoscaled_app import AppOutputs
from components.kafka_kraft import KafkaOutputs
from components.kafka_topology import BROKER_PORT, CONTROLLER_PORT, EXPORTER_PORT, UI_PORT
from components.network_policy import Flow, Outside, Port, ip_blocks
from components.postgres_ha import RESTAPI_PORT, PostgresOutputs
from components.redis_cluster import EXPORTER_PORT as REDIS_EXPORTER_PORT
from components.redis_cluster import RedisOutputs
from components.wiring import Pods
from settings.backup import BackupSettings
from settings.network_policy import NetworkPolicySettings

# The namespace label every namespace carries (Kubernetes >= 1.21 sets it itself).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# The API server's port as the pods see it: 443 is the `kubernetes` Service's port
# (managed control planes often listen on it directly); 6443 is the usual port of the
# endpoints behind it, which is what a policy sees after the Service is translated.
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class DeployedParts:
    """The outputs of every component the stack deploys (None or absent: not deployed)."""

    postgres: PostgresOutputs | None = None
    redis: RedisOutputs | None = None
    kafka: KafkaOutputs | None = None
    apps: dict[str, AppOutputs] = field(default_factory=dict)
    backups: dict[str, Pods] = field(default_factory=dict)  # system -> the pods of its backup

    def groups(self) -> list[Pods]:
        """Every group of pods deployed: one NetworkPolicy each."""
        groups: list[Pods | None] = []
        if self.postgres:
            groups += [self.postgres.pods, self.postgres.roll_pods]
        if self.redis:
            groups += [self.redis.pods, self.redis.job_pods]
        if self.kafka:
            groups += [self.kafka.controllers, self.kafka.brokers, self.kafka.exporter, self.kafka.ui]
        groups += [app.pods for app in self.apps.values()]
        groups += list(self.backups.values())
        return [group for group in groups if group is not None]


@dataclass(frozen=True)
class Peers:
    """The peers outside this stack's pods that flows name."""

    monitoring: Outside
    api_server: Outside
    anywhere: Outside

    @classmethod
    def of(cls, policy: NetworkPolicySettings, monitoring_namespace: str) -> Peers:
        return cls(
            monitoring=Outside(
                f"namespace {monitoring_namespace}",
                ({"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: monitoring_namespace}}},),
            ),
            # The API server is not a pod: its address depends on the cluster (a control-
            # plane node, a cloud endpoint), so it can only be named by address. The default
            # CIDR is any address, but only on the API ports and only for the pods that use
            # the API (networkPolicy.apiServerCidrs narrows it).
            api_server=Outside("the Kubernetes API server", ip_blocks(policy.api_server_cidrs)),
            anywhere=Outside("any address"),
        )


def platform_flows(
    parts: DeployedParts, *, policy: NetworkPolicySettings, monitoring_namespace: str, backup: BackupSettings
) -> list[Flow]:
    """Every connection the deployed parts make, and nothing else."""
    peers = Peers.of(policy, monitoring_namespace)
    backend = parts.apps.get("backend")
    return [
        *_patroni_flows(parts.postgres, backend, peers),
        *_redis_flows(parts.redis, backend, peers),
        *_kafka_flows(parts.kafka, parts.apps, peers),
        *_app_flows(parts.apps, peers, policy),
        *_backup_flows(parts, peers, policy, backup),
    ]


def _patroni_flows(postgres: PostgresOutputs | None, backend: AppOutputs | None, peers: Peers) -> list[Flow]:
    if postgres is None:
        return []
    patroni = postgres.pods
    pg, rest = Port(postgres.port), Port(RESTAPI_PORT)
    flows = [
        Flow(patroni, patroni, (pg, rest), "replicas stream from and clone the leader; members read each other's REST API"),
        Flow(patroni, peers.api_server, tuple(Port(p) for p in API_SERVER_PORTS), "Patroni keeps its leader lock in the API"),
        Flow(peers.monitoring, patroni, (rest,), "Prometheus scrapes Patroni's /metrics"),
        Flow(postgres.roll_pods, patroni, (rest,), "the roll Job reads /cluster and asks the leader for a switchover"),
        Flow(postgres.roll_pods, peers.api_server, tuple(Port(p) for p in API_SERVER_PORTS), "the roll Job evicts members"),
    ]
    if backend:
        flows.append(Flow(backend.pods, patroni, (pg,), "the application's queries (primary and replica Services)"))
    return flows


def _redis_flows(redis: RedisOutputs | None, backend: AppOutputs | None, peers: Peers) -> list[Flow]:
    if redis is None:
        return []
    client, bus = Port(redis.port), Port(redis.bus_port)
    flows = [
        Flow(redis.pods, redis.pods, (client, bus), "replication and failover on the client port, gossip on the cluster bus"),
        # The Jobs use redis-cli only and mount no service account token: no API access.
        Flow(redis.job_pods, redis.pods, (client,), "the preflight and reconcile Jobs manage the cluster"),
    ]
    if redis.metrics:
        flows.append(Flow(peers.monitoring, redis.pods, (Port(REDIS_EXPORTER_PORT),), "Prometheus scrapes redis_exporter"))
    if backend:
        flows.append(Flow(backend.pods, redis.pods, (client,), "the application's cache (cluster clients reach every node)"))
    return flows


def _kafka_flows(kafka: KafkaOutputs | None, apps: dict[str, AppOutputs], peers: Peers) -> list[Flow]:
    if kafka is None:
        return []
    brokers, broker, controller = kafka.brokers, Port(BROKER_PORT), Port(CONTROLLER_PORT)
    if kafka.controllers is None:
        flows = [Flow(brokers, brokers, (broker, controller), "combined nodes: replication and the KRaft quorum")]
    else:
        # Controllers never open connections to brokers: brokers fetch from the quorum.
        controllers = kafka.controllers
        flows = [
            Flow(controllers, controllers, (controller,), "the KRaft quorum (votes, metadata log)"),
            Flow(brokers, controllers, (controller,), "brokers register and fetch metadata from the quorum"),
            Flow(brokers, brokers, (broker,), "partition replication between brokers"),
        ]
    if "backend" in apps:
        flows.append(Flow(apps["backend"].pods, brokers, (broker,), "the application's producers and consumers"))
    if kafka.exporter:
        flows += [
            Flow(kafka.exporter, brokers, (broker,), "kafka-exporter reads topics, partitions and consumer lag"),
            Flow(peers.monitoring, kafka.exporter, (Port(EXPORTER_PORT),), "Prometheus scrapes kafka-exporter"),
        ]
    if kafka.ui:
        flows.append(Flow(kafka.ui, brokers, (broker,), "Kafka UI browses the cluster (read-only)"))
        if "nginx" in apps:
            # Not from anywhere: only through the platform's entry point (and through
            # `kubectl port-forward`, which policies do not filter).
            flows.append(Flow(apps["nginx"].pods, kafka.ui, (Port(UI_PORT),), "nginx may publish Kafka UI (login required)"))
    return flows


def _app_flows(apps: dict[str, AppOutputs], peers: Peers, policy: NetworkPolicySettings) -> list[Flow]:
    flows: list[Flow] = []
    nginx = apps.get("nginx")
    if nginx:
        ports = [Port(nginx.http_port)] + ([Port(nginx.https_port)] if nginx.https_port else [])
        flows.append(Flow(peers.anywhere, nginx.pods, tuple(ports), "the platform's entry point, from any client"))
        for tier in ("frontend", "backend"):
            if tier in apps:
                flows.append(Flow(nginx.pods, apps[tier].pods, (Port(apps[tier].http_port),), f"nginx proxies to the {tier}"))
    backend = apps.get("backend")
    if backend:
        flows.append(
            Flow(peers.monitoring, backend.pods, (Port(backend.http_port),), "Prometheus scrapes the backend's /metrics")
        )
        if policy.backend_egress_cidrs:
            external = Outside("networkPolicy.backendEgressCidrs", ip_blocks(policy.backend_egress_cidrs))
            flows.append(Flow(backend.pods, external, (), "external services the operator listed"))
    return flows


def _backup_flows(parts: DeployedParts, peers: Peers, policy: NetworkPolicySettings, backup: BackupSettings) -> list[Flow]:
    """The CronJobs of components/backups.py: pg_dump, redis-cli --rdb, the S3 upload."""
    flows: list[Flow] = []
    dump, snapshot = parts.backups.get("postgres"), parts.backups.get("redis")
    if dump and parts.postgres:
        flows.append(Flow(dump, parts.postgres.pods, (Port(parts.postgres.port),), "the scheduled pg_dump"))
    if snapshot and parts.redis:
        flows.append(Flow(snapshot, parts.redis.pods, (Port(parts.redis.port),), "the scheduled RDB snapshot of every master"))
    if backup.destination == "s3":
        store = Outside("the S3 store (networkPolicy.backupStorageCidrs)", ip_blocks(policy.backup_storage_cidrs))
        flows += [
            Flow(job, store, (Port(_url_port(backup.s3.endpoint)),), "the upload of the backup") for job in parts.backups.values()
        ]
    return flows


def _url_port(url: str) -> int:
    """The port of an S3 endpoint URL; empty (AWS S3) or https without one: 443."""
    parsed = urlparse(url)
    if parsed.port is not None:
        return parsed.port
    return 80 if parsed.scheme == "http" else 443
