"""The shape of a KRaft Kafka cluster, as pure functions of the settings: which
StatefulSets it has (controllers and brokers, or one combined node), their names, node ids
and selectors, the static voter list, and how many of each may be down at once.

KafkaKRaft builds its objects from these; the composition reads the roles for the
network policies and alerts, and tests read them instead of spelling names again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from components import k8s as shapes
from settings.base import PersistenceSettings, ResourceSettings, parse_quantity
from settings.kafka import KafkaSettings

BROKER_PORT = 9092
CONTROLLER_PORT = 9093
EXPORTER_PORT = 9308
UI_PORT = 8080
BROKER_ID_OFFSET = 100  # broker node ids are 100+ordinal, never a voter id (Bitnami's broker.minId)


@dataclass(frozen=True)
class KafkaNames(shapes.StackNames):
    """The names of the cluster's objects outside its StatefulSets, and their DNS names."""

    @property
    def base(self) -> str:
        return f"{self.release}-kafka"

    @property
    def client_service(self) -> str:
        return self.base  # brokers only: the bootstrap Service

    @property
    def kraft_secret(self) -> str:
        return f"{self.base}-kraft"

    @property
    def exporter(self) -> str:
        return f"{self.base}-exporter"

    @property
    def ui(self) -> str:
        return f"{self.base}-ui"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host(self.client_service)}:{BROKER_PORT}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host(self.ui)}:{UI_PORT}"


@dataclass(frozen=True)
class KafkaRole:
    """One StatefulSet of Kafka nodes."""

    kind: str  # "controller", "broker" or "combined"
    name: str  # StatefulSet name, also the pod name prefix
    headless: str
    replicas: int
    node_id_offset: int
    selector: dict[str, str]
    labels: dict[str, str]
    persistence: PersistenceSettings
    resources: ResourceSettings

    @property
    def persistence_key(self) -> str:
        """The config block of this role's volumes."""
        return "kafka.controller.persistence" if self.kind == "controller" else "kafka.persistence"

    @property
    def serves_clients(self) -> bool:
        return self.kind != "controller"

    @property
    def votes(self) -> bool:
        return self.kind != "broker"

    def pods(self, count: int | None = None) -> list[str]:
        """The pod names of the first ``count`` ordinals (default: all replicas)."""
        return [f"{self.name}-{ordinal}" for ordinal in range(self.replicas if count is None else count)]


def kafka_roles(release: str, settings: KafkaSettings) -> list[KafkaRole]:
    """The StatefulSets of the cluster: [controller, broker] when the quorum is dedicated,
    else [combined]."""
    broker_selector = shapes.selector_labels(release, "kafka")
    name = f"{release}-kafka"
    if not settings.controller.dedicated:
        return [
            KafkaRole(
                kind="combined",
                name=name,
                headless=f"{name}-headless",
                replicas=settings.replica_count,
                node_id_offset=0,
                selector=broker_selector,
                labels=shapes.common_labels(release, "kafka", "combined"),
                persistence=settings.persistence,
                resources=settings.resources,
            )
        ]
    controller = settings.controller
    return [
        KafkaRole(
            kind="controller",
            name=f"{name}-controller",
            headless=f"{name}-controller-headless",
            replicas=controller.replica_count,
            node_id_offset=0,
            selector=shapes.selector_labels(release, "kafka-controller"),
            labels=shapes.common_labels(release, "kafka-controller", "controller"),
            persistence=controller.persistence,
            resources=controller.resources,
        ),
        KafkaRole(
            kind="broker",
            name=name,
            headless=f"{name}-headless",
            replicas=settings.replica_count,
            node_id_offset=BROKER_ID_OFFSET,
            selector=broker_selector,
            labels=shapes.common_labels(release, "kafka", "broker"),
            persistence=settings.persistence,
            resources=settings.resources,
        ),
    ]


def voters(roles: list[KafkaRole]) -> KafkaRole:
    """The role whose nodes vote in the KRaft quorum."""
    return next(role for role in roles if role.votes)


def clients(roles: list[KafkaRole]) -> KafkaRole:
    """The role whose nodes serve clients (the brokers)."""
    return next(role for role in roles if role.serves_clients)


def voter_string(release: str, namespace: str, cluster_domain: str, settings: KafkaSettings) -> str:
    """controller.quorum.voters: ``id@<pod>.<headless>.<ns>.svc.<domain>:9093`` for each
    voter. Derived from the controller count alone, never from the broker count."""
    quorum = voters(kafka_roles(release, settings))
    return ",".join(
        f"{quorum.node_id_offset + ordinal}@{shapes.pod_host(pod, quorum.headless, namespace, cluster_domain)}:{CONTROLLER_PORT}"
        for ordinal, pod in enumerate(quorum.pods(settings.controller_count))
    )


def pdb_max_unavailable(kind: str, replicas: int) -> int:
    """Voters: keep a majority ((C-1)//2 may go: 1 of 3, 2 of 5). Brokers: one at a
    time, which the settings rules keep within RF - min.insync.replicas."""
    return (replicas - 1) // 2 if kind == "controller" else 1


def kafka_uuid(b64_url: str) -> str:
    """Kafka's Uuid text form from pulumi_random's unpadded base64url: the same alphabet,
    but Kafka never emits a leading '-' (it would read as a command-line option)."""
    return "_" + b64_url[1:] if b64_url.startswith("-") else b64_url


# What a Kafka JVM holds beside its heap (metaspace, code cache, threads, GC structures,
# direct buffers), from /proc/1/smaps of the local cluster's pods: ~240 MiB a broker, ~190
# MiB a controller. A memory request below heap + this is a pod the kubelet evicts first.
JVM_NON_HEAP_MIB = 256


def heap_mib(resources: ResourceSettings) -> int:
    """The JVM heap of a Kafka (or Kafka UI) pod: half the memory limit; the rest is page
    cache, metaspace and direct buffers."""
    limit = resources.limits.memory or resources.requests.memory or "1Gi"
    return int(parse_quantity(limit) / Decimal(2 * 2**20))
