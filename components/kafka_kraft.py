"""KafkaKRaft: Kafka without ZooKeeper.

prod: a static quorum of dedicated controllers (StatefulSet ``<release>-kafka-controller``,
node ids 0..C-1) and a broker StatefulSet ``<release>-kafka`` (node ids 100+ordinal) whose
size is ``kafka.replicaCount``. Nothing the controllers read depends on the broker count,
so scaling brokers never rolls a controller. dev: one combined broker+controller node
``<release>-kafka-0``.

Every node runs ``components/files/kafka/entrypoint.sh`` with a server.properties rendered
here from the per-role templates beside it; the conformance tests run the same files with
the real Kafka jars. Optional, from components/kafka_tools.py: Kafka UI (kafbat,
read-only, behind a login) and kafka-exporter on :9308.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from components import change_locks, kafka_tools
from components import k8s as shapes
from components import kube_objects as kube
from components.kafka_topology import (
    BROKER_ID_OFFSET,
    BROKER_PORT,
    CONTROLLER_PORT,
    EXPORTER_PORT,
    KafkaNames,
    KafkaRole,
    clients,
    heap_mib,
    kafka_roles,
    kafka_uuid,
    pdb_max_unavailable,
    voter_string,
)
from components.wiring import MetricsEndpoint, Pods
from settings.data_safety import DataSafetySettings
from settings.kafka import KafkaSettings

FILES = Path(__file__).resolve().parent / "files" / "kafka"
DATA_MOUNT = "/var/lib/kafka/data"  # the image's data VOLUME (ours, and apache/kafka's): the volume goes exactly here
LOG_DIRS = f"{DATA_MOUNT}/kraft-logs"  # a subdirectory, so lost+found is never read as a partition
CONFIG_MOUNT = "/etc/kafka/rendered"
DATA_CLAIM = "data"  # claims data-<statefulset>-<ordinal>
LOG_MOUNT = "/opt/kafka/logs"  # LOG_DIR: the image's and apache/kafka's
KAFKA_UID = 1000  # images/kafka's user, as apache/kafka's appuser
# The image's bin/ first, so the guide's `kubectl exec ... -- kafka-topics.sh` works as written.
KAFKA_PATH = "/opt/kafka/bin:/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class KafkaKRaftArgs:
    release: str
    namespace: str
    settings: KafkaSettings
    storage_class: str = ""  # the platform's storageClass, used when kafka's own is empty
    image_pull_secrets: list[str] = field(default_factory=list)
    ui_password: SecretStr | None = None  # the kafkaUiPassword secret; generated when unset
    cluster_domain: str = "cluster.local"
    data_safety: DataSafetySettings = field(default_factory=DataSafetySettings)


@dataclass(frozen=True)
class KafkaOutputs:
    """What the rest of the platform may use of the cluster."""

    names: KafkaNames
    roles: list[KafkaRole]  # the StatefulSets: [controller, broker] or [combined]
    bootstrap_servers: str  # host:port of the client Service (brokers only)
    ui_url: str  # empty without Kafka UI
    brokers: Pods  # the nodes that serve clients (dev: the combined node, which also votes)
    controllers: Pods | None  # the dedicated quorum; None when the combined node votes
    exporter: Pods | None
    ui: Pods | None
    metrics: MetricsEndpoint | None  # kafka-exporter, when enabled


class KafkaKRaft(pulumi.ComponentResource):
    """A KRaft Kafka cluster whose controller quorum is fixed and whose brokers scale."""

    cluster_id: pulumi.Output[str]
    outputs: KafkaOutputs

    def __init__(self, name: str, args: KafkaKRaftArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:KafkaKRaft", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        names = KafkaNames(args.release, args.namespace, args.cluster_domain)
        roles = kafka_roles(args.release, settings)
        voters = voter_string(args.release, args.namespace, args.cluster_domain, settings)

        # The static quorum is fixed when the stack is created. This lock is replaced
        # whenever the voters change; in prod it is protected, so Pulumi refuses that
        # replacement (and with it the change) unless kafka.controller.allowQuorumChange
        # lifts the protection for the one `pulumi up` of a planned migration.
        self.quorum_lock = change_locks.change_lock(
            # the voters are DNS names: the cluster domain is part of them
            ["kafka.controller", "clusterDomain"],
            "kafka.controller.allowQuorumChange",
            shape={"quorum": settings.quorum_shape, "voters": voters},
            locked=settings.quorum_locked,
            parent=self,
            aliases=[f"{name}-controller-quorum-lock"],  # its name before change_locks named every lock
        )
        safety = args.data_safety
        self.removal_lock = change_locks.removal_lock("kafka.enabled", safety, parent=self)
        self.cluster_id = _cluster_id(f"{name}-cluster-id", settings.cluster_id, parent=self)
        secret_name = names.kraft_secret
        self.kraft_secret = kube.Secret(
            f"{name}-kraft-secret",
            metadata=shapes.metadata(secret_name, args.namespace, shapes.common_labels(args.release, "kafka", "kraft")),
            type="Opaque",
            string_data={"cluster-id": self.cluster_id},
            opts=child,
        )

        self.config_maps: dict[str, kube.ConfigMap] = {}
        self.headless_services: dict[str, kube.Service] = {}
        self.stateful_sets: dict[str, kube.StatefulSet] = {}
        self.pdbs: dict[str, kube.PodDisruptionBudget] = {}
        self.grown_claims: list[kube.PersistentVolumeClaimPatch] = []
        for role in roles:
            prefix = f"{name}-{role.kind}"
            data = {
                "server.properties": render_properties(role.kind, settings, voters),
                "entrypoint.sh": _file("entrypoint.sh"),
                "probe-ready.sh": _file("probe-ready.sh"),
            }
            self.config_maps[role.kind] = kube.ConfigMap(
                f"{prefix}-config",
                metadata=shapes.metadata(f"{role.name}-config", args.namespace, role.labels),
                data=data,
                opts=child,
            )
            self.headless_services[role.kind] = kube.Service(
                f"{prefix}-headless",
                metadata=shapes.service_metadata(role.headless, args.namespace, role.labels),
                spec=_headless_spec(role),
                opts=child,
            )
            volume_claims_lock = change_locks.volume_claims_lock(
                role.persistence_key, role.persistence, args.storage_class, safety, parent=self
            )
            self.stateful_sets[role.kind] = kube.StatefulSet(
                f"{prefix}-statefulset",
                metadata=shapes.metadata(
                    role.name,
                    args.namespace,
                    role.labels,
                    shapes.scan_exceptions(_CHECKOV_SKIPS) | change_locks.statefulset_annotations(safety),
                ),
                spec=_stateful_set_spec(args, role, secret_name, shapes.checksum(*(data[key] for key in sorted(data)))),
                # a pod created before the Secret it reads stays in CreateContainerConfigError;
                # a refused change (a lock) stops before the StatefulSet
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        self.kraft_secret,
                        self.config_maps[role.kind],
                        self.headless_services[role.kind],
                        self.quorum_lock,
                        self.removal_lock,
                        volume_claims_lock,
                    ],
                ),
            )
            self.grown_claims += change_locks.grown_claims(
                prefix,
                claim=DATA_CLAIM,
                statefulset=role.name,
                namespace=args.namespace,
                replicas=role.replicas,
                persistence=role.persistence,
                safety=safety,
                after=self.stateful_sets[role.kind],
                parent=self,
            )
            if role.replicas >= 2:
                self.pdbs[role.kind] = shapes.pod_disruption_budget(
                    f"{prefix}-pdb",
                    name=f"{role.name}-pdb",
                    namespace=args.namespace,
                    labels=role.labels,
                    selector=role.selector,
                    max_unavailable=pdb_max_unavailable(role.kind, role.replicas),
                    opts=child,
                )

        brokers = clients(roles)
        self.client_service = kube.Service(
            f"{name}-client-service",
            metadata=shapes.service_metadata(names.client_service, args.namespace, brokers.labels),
            spec={
                "type": "ClusterIP",
                "selector": dict(brokers.selector),
                "ports": [{"name": "broker", "port": BROKER_PORT, "targetPort": "broker", "protocol": "TCP"}],
            },
            opts=child,
        )
        bootstrap = names.bootstrap_servers

        self.exporter: kube.Deployment | None = None
        if settings.exporter.enabled:
            # kafka-exporter exits until a broker answers: start it after the brokers are Ready
            self.exporter = kafka_tools.exporter(self, name, args, names, bootstrap, after=list(self.stateful_sets.values()))
        self.ui: kube.Deployment | None = None
        if settings.ui.enabled:
            self.ui = kafka_tools.ui(self, name, args, names, bootstrap)

        controllers = next((role for role in roles if role.kind == "controller"), None)
        exporter_selector = shapes.selector_labels(args.release, "kafka-exporter")
        self.outputs = KafkaOutputs(
            names=names,
            roles=roles,
            bootstrap_servers=bootstrap,
            ui_url=names.ui_url if settings.ui.enabled else "",
            brokers=Pods("kafka", dict(brokers.selector)),
            controllers=Pods("kafka-controller", dict(controllers.selector)) if controllers else None,
            exporter=Pods("kafka-exporter", exporter_selector) if settings.exporter.enabled else None,
            ui=Pods("kafka-ui", shapes.selector_labels(args.release, "kafka-ui")) if settings.ui.enabled else None,
            metrics=MetricsEndpoint("kafka", names.exporter, exporter_selector, "metrics", EXPORTER_PORT)
            if settings.exporter.enabled
            else None,
        )
        self.register_outputs({"bootstrapServers": bootstrap, "uiUrl": self.outputs.ui_url})


# --- rendered files (pure: the conformance tests run them) -------------------------------


def render_properties(kind: str, settings: KafkaSettings, voters: str) -> str:
    """server.properties of a ``kind`` node ("controller", "broker", "combined") from
    components/files/kafka/<kind>.properties; per-pod values stay as @NODE_ID@ and
    @ADVERTISED_HOST@ for entrypoint.sh."""
    config = settings.config
    # Every field of kafka.config has its line in cluster-policy.properties.
    values = {name: _property_value(getattr(config, name)) for name in type(config).model_fields}
    policy = string.Template(_file("cluster-policy.properties")).substitute(values)
    return string.Template(_file(f"{kind}.properties")).substitute(
        voters=voters,
        broker_port=BROKER_PORT,
        controller_port=CONTROLLER_PORT,
        node_id_offset=BROKER_ID_OFFSET,
        log_dirs=LOG_DIRS,
        cluster_policy=policy.rstrip("\n"),
    )


# --- private builders ----------------------------------------------------------------


def _file(name: str) -> str:
    return (FILES / name).read_text()


def _property_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _cluster_id(resource_name: str, configured: str | None, *, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Generated once (16 random bytes in Kafka's base64url form) and kept in the stack
    state, so it never changes while the volumes formatted with it live on; protected
    for the same reason as generated credentials (components/credentials.py): a destroy
    that keeps the volumes keeps the ID they were formatted with, and registered even
    when ``kafka.clusterId`` is set, so setting it never deletes a protected resource."""
    generated = random.RandomId(resource_name, byte_length=16, opts=pulumi.ResourceOptions(parent=parent, protect=True))
    if configured is not None:
        return pulumi.Output.secret(configured)
    return pulumi.Output.secret(generated.b64_url.apply(kafka_uuid))


def _headless_spec(role: KafkaRole) -> shapes.Obj:
    ports = []
    if role.serves_clients:
        ports.append({"name": "broker", "port": BROKER_PORT, "targetPort": "broker", "protocol": "TCP"})
    if role.votes:
        ports.append({"name": "controller", "port": CONTROLLER_PORT, "targetPort": "controller", "protocol": "TCP"})
    return {
        "clusterIP": "None",
        # Pods must find each other before they are Ready: a quorum forms only then.
        "publishNotReadyAddresses": True,
        "selector": dict(role.selector),
        "ports": ports,
    }


def _stateful_set_spec(args: KafkaKRaftArgs, role: KafkaRole, secret_name: str, config_checksum: str) -> shapes.Obj:
    spec: shapes.Obj = {
        "serviceName": role.headless,
        "replicas": role.replicas,
        # Voters must start together; OrderedReady would wait for a pod-0 that cannot be
        # Ready before the quorum exists.
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate"},
        # A restarted broker catches up before the next one is rolled.
        "minReadySeconds": 30,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": dict(role.selector)},
        "template": {
            "metadata": {"labels": dict(role.labels), "annotations": {shapes.CONFIG_CHECKSUM: config_checksum}},
            "spec": _kafka_pod(args, role, secret_name),
        },
    }
    return spec | shapes.volume_claim_templates(DATA_CLAIM, role.persistence, args.storage_class, role.selector)


def _kafka_pod(args: KafkaKRaftArgs, role: KafkaRole, secret_name: str) -> shapes.Obj:
    env = [
        shapes.env_from_secret("CLUSTER_ID", secret_name, "cluster-id"),
        shapes.env_from_field("POD_NAME", "metadata.name"),
        shapes.env_value("KAFKA_NODE_ID_OFFSET", str(role.node_id_offset)),
        shapes.env_value("KAFKA_CONFIG_TEMPLATE", f"{CONFIG_MOUNT}/server.properties"),
        shapes.env_value("KAFKA_CONFIG", "/tmp/kafka/server.properties"),
        shapes.env_value("KAFKA_SERVER_HEAP_OPTS", f"-Xms{heap_mib(role.resources)}m -Xmx{heap_mib(role.resources)}m"),
        shapes.env_value("LOG_DIR", LOG_MOUNT),
        # The GC log is the only file the server writes in LOG_DIR (its log goes to stdout):
        # 4 x 16 MB, within the logs volume, instead of the launcher's 10 x 100 MB. (The
        # upstream apache/kafka launcher ignores this: with it, raise the logs volume.)
        shapes.env_value(
            "KAFKA_GC_LOG_OPTS", f"-Xlog:gc*:file={LOG_MOUNT}/kafkaServer-gc.log:time,tags:filecount=4,filesize=16M"
        ),
        shapes.env_value("PATH", KAFKA_PATH),
    ]
    if role.serves_clients:
        env.append(
            shapes.env_value(
                "KAFKA_ADVERTISED_HOST", shapes.pod_host("$(POD_NAME)", role.headless, args.namespace, args.cluster_domain)
            )
        )
    ports = []
    if role.serves_clients:
        ports.append({"name": "broker", "containerPort": BROKER_PORT, "protocol": "TCP"})
    if role.votes:
        ports.append({"name": "controller", "containerPort": CONTROLLER_PORT, "protocol": "TCP"})
    probe_port = "broker" if role.serves_clients else "controller"
    probe_port_number = BROKER_PORT if role.serves_clients else CONTROLLER_PORT
    container: shapes.Obj = {
        "name": "kafka",
        "image": args.settings.image.reference,
        "imagePullPolicy": args.settings.image.pull_policy,
        "command": ["/bin/bash", f"{CONFIG_MOUNT}/entrypoint.sh"],
        "env": env,
        "ports": ports,
        "resources": shapes.container_resources(role.resources, scratch=shapes.unclaimed_size(role.persistence)),
        # Log recovery after a crash can take minutes: up to 10 before the pod is restarted.
        "startupProbe": shapes.tcp_probe(probe_port, period=10, timeout=5, failures=60),
        # Ready: it answers a Kafka request (ApiVersions) on its listener. Alive: it holds the
        # listener open. A busy node leaves rotation after 30 s but is restarted only once
        # its port has been closed for 2 minutes.
        "readinessProbe": {
            "exec": {"command": ["bash", f"{CONFIG_MOUNT}/probe-ready.sh", str(probe_port_number)]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": shapes.tcp_probe(probe_port, period=20, timeout=5, failures=6),
        "securityContext": shapes.container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_MOUNT},
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "logs", "mountPath": LOG_MOUNT},
        ],
    }
    volumes: list[shapes.Obj] = [
        {"name": "config", "configMap": {"name": f"{role.name}-config", "defaultMode": 0o444}},
        # The server.properties entrypoint.sh renders, the native compression libraries the
        # JVM unpacks, its perf data.
        shapes.scratch_volume("tmp", "64Mi"),
        # LOG_DIR: the GC log (KAFKA_GC_LOG_OPTS above: 64 MB at most).
        shapes.scratch_volume("logs", "128Mi"),
        *shapes.data_volume("data", role.persistence),
    ]
    pod: shapes.Obj = {
        "automountServiceAccountToken": False,
        # A Service named <release>-kafka would otherwise inject KAFKA_PORT & co.
        "enableServiceLinks": False,
        "securityContext": shapes.pod_security_context(run_as_user=KAFKA_UID, fs_group=KAFKA_UID),
        # Controlled shutdown moves leadership away before the process exits.
        "terminationGracePeriodSeconds": 180 if role.serves_clients else 120,
        "containers": [container],
        "volumes": volumes,
        **shapes.spread(role.selector, require_separate_nodes=True),
        **shapes.image_pull_secrets(args.image_pull_secrets),
    }
    return pod


# Why checkov's findings (and their kube-score twins) do not apply (see components/k8s.py).
_CHECKOV_SKIPS = {
    **shapes.PINNED_IMAGE_SKIPS,
    "CKV_K8S_35": (
        "the only Secret env is CLUSTER_ID, the KRaft cluster id, which is no credential (any client reads it "
        "from the cluster metadata); it is in a Secret only so it is generated once"
    ),
    "CKV_K8S_40": (
        f"runs as uid {KAFKA_UID}, the user of the Kafka image (as apache/kafka's appuser) that owns /opt/kafka and the log dirs"
    ),
}
