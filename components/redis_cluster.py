"""RedisCluster: a sharded, self-healing Redis Cluster as one StatefulSet.

dev is one node owning all 16384 slots; prod is ``masterCount`` masters with
``replicasPerMaster`` replicas each. Redis itself owns the cluster's state (``nodes.conf``
on each pod's volume); this program owns only the shape around it:

- a Secret with the password (``requirepass`` = ``masterauth``), read by every tool as
  ``REDISCLI_AUTH``, never as ``-a``;
- a ConfigMap with ``redis.conf`` and the scripts of ``components/files/redis``;
- a headless Service (peers and Jobs find pods before they are ready), a client Service
  (a seed for cluster clients) and, with the exporter, a metrics Service;
- the StatefulSet ``<release>-redis-cluster`` (Parallel, preStop failover, redis_exporter
  sidecar) and, in prod, a PDB of ``maxUnavailable: 1``;
- two Jobs named by a hash of the topology, so a topology change runs them again:
  *preflight* before the StatefulSet changes (removes nodes a shrink would delete,
  draining their slots when allowed) and *reconcile* after (creates, joins, rebalances).

No HPA: a Redis pod without slots serves nothing, and removing one loses its slots.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pydantic import SecretStr

from components import change_locks
from components import k8s as shapes
from components import kube_objects as kube
from components.credentials import credential
from components.wiring import ClientImage, MetricsEndpoint, Pods, SecretKeyRef
from settings.data_safety import DataSafetySettings
from settings.redis import RedisClusterSettings

FILES = Path(__file__).parent / "files" / "redis"
SCRIPTS = (
    "common.sh",
    "start.sh",
    "prestop.sh",
    "probe-liveness.sh",
    "probe-readiness.sh",
    "cluster-lib.sh",
    "cluster-preflight.sh",
    "cluster-reconcile.sh",
)
CONFIG_DIR = "/etc/redis"
DATA_CLAIM = "data"  # claims data-<statefulset>-<ordinal>
DATA_DIR = "/data"
BUS_PORT_OFFSET = 10000
EXPORTER_PORT = 9121
PASSWORD_KEY = "redis-password"
# The Redis image's redis user and group (images/redis, as in the official image).
REDIS_UID = 999
EXPORTER_UID = 59000
# The two Jobs, by the argument their script takes; each pod's component label is cluster-<mode>.
JOB_DEADLINE_SECONDS = 900  # the Jobs' activeDeadlineSeconds: they give up (and say why) first
# The provider's await outlasts the Job's own deadline (its default, 10 minutes, did not),
# so a slow first start ends with the Job's verdict, not with the engine's timeout.
JOB_AWAIT = pulumi.CustomTimeouts(create="17m", update="17m")
JOB_NAME = "redis-cluster-job"  # the app.kubernetes.io/name of the Jobs' pods


@dataclass(frozen=True)
class RedisClusterArgs:
    release: str
    namespace: str
    settings: RedisClusterSettings
    password: SecretStr | None = None  # redisPassword from the stack config; generated when unset
    storage_class: str = ""  # the stack-wide default when persistence.storageClass is empty
    image_pull_secrets: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    data_safety: DataSafetySettings = field(default_factory=DataSafetySettings)


@dataclass(frozen=True)
class RedisNames(shapes.StackNames):
    """Every name the component derives from the release, and the DNS names of its pods."""

    @property
    def full(self) -> str:
        return f"{self.release}-redis-cluster"

    @property
    def headless(self) -> str:
        return f"{self.full}-headless"

    @property
    def secret(self) -> str:
        return f"{self.full}-secret"

    @property
    def config(self) -> str:
        return f"{self.full}-config"

    @property
    def metrics(self) -> str:
        return f"{self.full}-metrics"

    @property
    def pdb(self) -> str:
        return f"{self.full}-pdb"

    @property
    def client_host(self) -> str:
        return self.host(self.full)

    @property
    def node_host_template(self) -> str:
        """printf template of pod i's stable DNS name (through the headless Service)."""
        return self.pod_host(f"{self.full}-%d", self.headless)

    def job(self, mode: str, settings: RedisClusterSettings) -> str:
        """Named by the topology (and drain): a change of it runs the Job again."""
        topology = f"{settings.master_count}/{settings.replicas_per_master}/{settings.draining}"
        return f"{self.full}-{mode}-{hashlib.sha256(topology.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class RedisOutputs:
    """What the rest of the platform may use of the cluster."""

    names: RedisNames
    seed_host: str  # the client Service: a seed for cluster clients (cluster mode on)
    port: int
    bus_port: int
    password: SecretKeyRef
    client_image: ClientImage  # redis-cli, as the redis user
    pods: Pods  # the Redis servers
    job_pods: Pods  # the preflight and reconcile Jobs
    metrics: MetricsEndpoint | None  # redis_exporter, when enabled


class RedisCluster(pulumi.ComponentResource):
    """Redis Cluster: Secret, ConfigMap, Services, StatefulSet, PDB and the two Jobs."""

    secret: kube.Secret
    config_map: kube.ConfigMap
    headless_service: kube.Service
    client_service: kube.Service
    stateful_set: kube.StatefulSet
    preflight_job: kube.Job
    reconcile_job: kube.Job
    pdb: kube.PodDisruptionBudget | None
    password: pulumi.Output[str]
    """The password (secret), for consumers outside the cluster."""
    outputs: RedisOutputs

    def __init__(self, name: str, args: RedisClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:RedisCluster", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        names = RedisNames(args.release, args.namespace, args.cluster_domain)
        selector = shapes.selector_labels(args.release, "redis-cluster")
        labels = shapes.common_labels(args.release, "redis-cluster", "cache")
        # The Jobs' pods carry a name of their own: with the servers' labels they would count
        # in the StatefulSet's required anti-affinity (a Job pod then blocks a Redis pod's
        # node, or the other way round), in the PDB (a finished Job pod has no scale, so
        # the disruption controller allows no eviction at all) and behind the Services.
        job_selector = shapes.selector_labels(args.release, JOB_NAME)

        safety = args.data_safety
        self.removal_lock = change_locks.removal_lock("redisCluster.enabled", safety, parent=self)
        self.volume_claims_lock = change_locks.volume_claims_lock(
            "redisCluster.persistence", settings.persistence, args.storage_class, safety, parent=self
        )
        self.password = credential(f"{name}-password", args.password, parent=self)
        # requirepass and masterauth are read at start: a new value rolled pod by pod
        # leaves old and new members refusing each other's replication.
        self.credentials_lock = change_locks.credentials_lock(["redisPassword"], [self.password], safety, parent=self)
        self.secret = kube.Secret(
            f"{name}-secret",
            metadata=shapes.metadata(names.secret, args.namespace, labels),
            type="Opaque",
            string_data={PASSWORD_KEY: self.password},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.credentials_lock]),
        )
        locks: list[pulumi.Resource] = [self.removal_lock, self.volume_claims_lock]
        files = render_files(settings)
        self.config_map = kube.ConfigMap(
            f"{name}-config",
            metadata=shapes.metadata(names.config, args.namespace, labels),
            data=files,
            opts=child,
        )
        self.headless_service = kube.Service(
            f"{name}-headless",
            metadata=shapes.service_metadata(names.headless, args.namespace, labels),
            spec=_headless_spec(settings, selector),
            opts=child,
        )
        self.client_service = kube.Service(
            f"{name}-service",
            metadata=shapes.service_metadata(names.full, args.namespace, labels),
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "tcp-redis", "port": settings.port, "targetPort": "tcp-redis", "protocol": "TCP"}],
            },
            opts=child,
        )
        if settings.exporter.enabled:
            kube.Service(
                f"{name}-metrics",
                metadata=shapes.service_metadata(
                    names.metrics,
                    args.namespace,
                    labels,
                    {"prometheus.io/scrape": "true", "prometheus.io/port": str(EXPORTER_PORT)},
                ),
                spec={
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [{"name": "http-metrics", "port": EXPORTER_PORT, "targetPort": "http-metrics", "protocol": "TCP"}],
                },
                opts=child,
            )

        job_env = _job_env(args, names)
        self.preflight_job = kube.Job(
            f"{name}-preflight",
            metadata=shapes.metadata(
                names.job("preflight", settings), args.namespace, _job_labels(args, "preflight"), _job_annotations()
            ),
            spec=_job_spec(args, names, "preflight", job_env),
            # The locks first: a refused change must not get as far as removing nodes.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.config_map, self.secret, self.headless_service, *locks],
                custom_timeouts=JOB_AWAIT,
            ),
        )
        rollout: dict[str, str | pulumi.Output[str]] = {
            shapes.CONFIG_CHECKSUM: shapes.checksum(*files.values()),
            shapes.CREDENTIALS_CHECKSUM: self.password.apply(shapes.checksum),
        }
        # The StatefulSet changes only after the preflight Job has taken the nodes a
        # shrink deletes out of the cluster.
        self.stateful_set = kube.StatefulSet(
            f"{name}-statefulset",
            metadata=shapes.metadata(
                names.full,
                args.namespace,
                labels,
                shapes.scan_exceptions(_CHECKOV_SKIPS) | change_locks.statefulset_annotations(safety),
            ),
            spec=_stateful_set_spec(args, names, selector, labels, rollout),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.preflight_job, self.config_map, self.secret, self.headless_service, *locks]
            ),
        )
        self.grown_claims = change_locks.grown_claims(
            name,
            claim=DATA_CLAIM,
            statefulset=names.full,
            namespace=args.namespace,
            replicas=settings.node_count,
            persistence=settings.persistence,
            safety=safety,
            after=self.stateful_set,
            parent=self,
        )
        # Not depending on the StatefulSet: its readiness needs the cluster this Job
        # creates (a deadlock otherwise). The Job waits for every pod itself.
        self.reconcile_job = kube.Job(
            f"{name}-reconcile",
            metadata=shapes.metadata(
                names.job("reconcile", settings), args.namespace, _job_labels(args, "reconcile"), _job_annotations()
            ),
            spec=_job_spec(args, names, "reconcile", job_env),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.preflight_job, self.config_map, self.secret, self.headless_service],
                custom_timeouts=JOB_AWAIT,
            ),
        )
        self.pdb = None
        if settings.node_count > 1:
            self.pdb = shapes.pod_disruption_budget(
                f"{name}-pdb",
                name=names.pdb,
                namespace=args.namespace,
                labels=labels,
                selector=selector,
                max_unavailable=1,
                opts=child,
            )

        self.outputs = RedisOutputs(
            names=names,
            seed_host=names.client_host,
            port=settings.port,
            bus_port=settings.port + BUS_PORT_OFFSET,
            password=SecretKeyRef(self.secret.metadata["name"], PASSWORD_KEY),
            client_image=ClientImage(settings.image.reference, settings.image.pull_policy, REDIS_UID),
            pods=Pods("redis-cluster", selector),
            job_pods=Pods("redis-cluster-jobs", job_selector),
            metrics=MetricsEndpoint("redis", names.metrics, selector, "http-metrics", EXPORTER_PORT)
            if settings.exporter.enabled
            else None,
        )
        self.register_outputs({"seedHost": names.client_host, "port": settings.port, "password": self.password})


# --- files -----------------------------------------------------------------------------


def render_files(settings: RedisClusterSettings) -> dict[str, str]:
    """The ConfigMap's data: ``redis.conf`` from its template, and the scripts as they are."""
    maxmemory = settings.maxmemory_bytes
    conf = string.Template((FILES / "redis.conf").read_text()).substitute(
        port=settings.port,
        node_timeout=settings.cluster_node_timeout,
        maxmemory=maxmemory if maxmemory is not None else 0,
        maxmemory_policy=settings.maxmemory_policy,
    )
    return {"redis.conf": conf} | {script: (FILES / script).read_text() for script in SCRIPTS}


# --- private builders ----------------------------------------------------------------

# Why checkov's findings (and their kube-score twins) do not apply to the StatefulSet and
# the Jobs (see components/k8s.py).
_CHECKOV_SKIPS = {
    **shapes.PINNED_IMAGE_SKIPS,
    "CKV_K8S_35": (
        "redis-cli (start script, probes, preStop, Jobs) reads the password from REDISCLI_AUTH and "
        "redis_exporter from REDIS_PASSWORD; redis-cli has no password-file option and -a would show it in ps"
    ),
    "CKV_K8S_40": (
        f"runs as uid {REDIS_UID}, the redis user of the Redis image (as in the official one) that owns /data "
        f"(the exporter sidecar runs as {EXPORTER_UID})"
    ),
}


def _job_annotations() -> dict[str, str]:
    return {**shapes.REPLACE_UNREADY_JOB, **shapes.scan_exceptions(_CHECKOV_SKIPS)}


def _headless_spec(settings: RedisClusterSettings, selector: dict[str, str]) -> shapes.Obj:
    return {
        "clusterIP": "None",
        # Peers and the Jobs must resolve pods before they are ready (a node is ready
        # only once it is in the cluster).
        "publishNotReadyAddresses": True,
        "selector": selector,
        "ports": [
            {"name": "tcp-redis", "port": settings.port, "targetPort": "tcp-redis", "protocol": "TCP"},
            {
                "name": "tcp-redis-bus",
                "port": settings.port + BUS_PORT_OFFSET,
                "targetPort": "tcp-redis-bus",
                "protocol": "TCP",
            },
        ],
    }


def _password_env(names: RedisNames) -> shapes.Obj:
    return shapes.env_from_secret("REDISCLI_AUTH", names.secret, PASSWORD_KEY)


def _common_env(args: RedisClusterArgs, names: RedisNames) -> list[shapes.Obj]:
    return [
        _password_env(names),
        shapes.env_value("REDIS_PORT", str(args.settings.port)),
        shapes.env_value("REDIS_NODE_HOST_TEMPLATE", names.node_host_template),
    ]


def _job_env(args: RedisClusterArgs, names: RedisNames) -> list[shapes.Obj]:
    settings = args.settings
    return [
        *_common_env(args, names),
        shapes.env_value("REDIS_NODE_COUNT", str(settings.node_count)),
        shapes.env_value("REDIS_MASTER_COUNT", str(settings.master_count)),
        shapes.env_value("REDIS_REPLICAS_PER_MASTER", str(settings.replicas_per_master)),
        shapes.env_value("REDIS_DRAIN", "yes" if settings.draining else "no"),
        shapes.env_value("REDIS_WAIT_SECONDS", "300"),
    ]


def _config_volume(names: RedisNames) -> shapes.Obj:
    return {"name": "config", "configMap": {"name": names.config, "defaultMode": 0o555}}


def _job_labels(args: RedisClusterArgs, mode: str) -> dict[str, str]:
    return shapes.common_labels(args.release, JOB_NAME, f"cluster-{mode}")


def _job_spec(args: RedisClusterArgs, names: RedisNames, mode: str, env: list[shapes.Obj]) -> shapes.Obj:
    return shapes.script_job_spec(
        container=mode,
        image=args.settings.image,
        command=["bash", f"{CONFIG_DIR}/cluster-{mode}.sh"],
        labels=_job_labels(args, mode),
        run_as_user=REDIS_UID,
        config_volume=_config_volume(names),
        config_dir=CONFIG_DIR,
        resources={
            "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "32Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi", "ephemeral-storage": "128Mi"},
        },
        backoff_limit=6,
        deadline_seconds=JOB_DEADLINE_SECONDS,
        image_pull_secret_names=args.image_pull_secrets,
        env=env,
    )


def _exec_probe(script: str, *, period: int, timeout: int, failures: int) -> shapes.Obj:
    # No initialDelaySeconds: the startup probe gates the others (and a 0 here would be
    # dropped by the provider, showing as a diff).
    return {
        "exec": {"command": ["bash", f"{CONFIG_DIR}/{script}"]},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _stateful_set_spec(
    args: RedisClusterArgs,
    names: RedisNames,
    selector: dict[str, str],
    labels: dict[str, str],
    rollout: dict[str, str | pulumi.Output[str]],
) -> shapes.Obj:
    settings = args.settings
    redis: shapes.Obj = {
        "name": "redis",
        "image": settings.image.reference,
        "imagePullPolicy": settings.image.pull_policy,
        "command": ["bash", f"{CONFIG_DIR}/start.sh"],
        "ports": [
            {"name": "tcp-redis", "containerPort": settings.port, "protocol": "TCP"},
            {"name": "tcp-redis-bus", "containerPort": settings.port + BUS_PORT_OFFSET, "protocol": "TCP"},
        ],
        "env": [
            shapes.env_from_field("POD_IP", "status.podIP"),
            *_common_env(args, names),
            shapes.env_value("REDIS_CONF", f"{CONFIG_DIR}/redis.conf"),
            shapes.env_value("REDIS_DATA_DIR", DATA_DIR),
            shapes.env_value("REDIS_FAILOVER_TIMEOUT", str(settings.failover_timeout_seconds)),
        ],
        "resources": shapes.container_resources(settings.resources, scratch=shapes.unclaimed_size(settings.persistence)),
        # A long AOF load must not get the pod killed: liveness starts after this.
        "startupProbe": _exec_probe("probe-liveness.sh", period=5, timeout=5, failures=120),
        "livenessProbe": _exec_probe("probe-liveness.sh", period=10, timeout=5, failures=5),
        "readinessProbe": _exec_probe("probe-readiness.sh", period=5, timeout=5, failures=3),
        "lifecycle": {"preStop": {"exec": {"command": ["bash", f"{CONFIG_DIR}/prestop.sh"]}}},
        "securityContext": shapes.container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "run", "mountPath": "/run/redis"},
        ],
    }
    containers = [redis]
    if settings.exporter.enabled:
        exporter = settings.exporter
        containers.append(
            {
                "name": "metrics",
                "image": exporter.image.reference,
                "imagePullPolicy": exporter.image.pull_policy,
                "ports": [{"name": "http-metrics", "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
                "env": [
                    shapes.env_value("REDIS_ADDR", f"redis://127.0.0.1:{settings.port}"),
                    shapes.env_from_secret("REDIS_PASSWORD", names.secret, PASSWORD_KEY),
                ],
                "resources": shapes.container_resources(exporter.resources),
                "securityContext": {**shapes.container_security_context(), "runAsUser": EXPORTER_UID},
                # /health answers once the exporter serves; liveness only asks that it holds its
                # port, so a slow scrape of a busy Redis does not restart it.
                "livenessProbe": shapes.tcp_probe("http-metrics", initial_delay=10, period=15, timeout=5, failures=6),
                "readinessProbe": shapes.http_probe("/health", "http-metrics", initial_delay=5, period=10, timeout=5, failures=3),
            }
        )
    volumes: list[shapes.Obj] = [
        _config_volume(names),
        # redis-cli's and the scripts' scratch files; the data is on /data.
        shapes.scratch_volume("tmp", "32Mi"),
        # The readiness latch: gone with the pod, so a new pod must reach cluster_state:ok once.
        shapes.scratch_volume("run", "1Mi", memory=True),
        *shapes.data_volume("data", settings.persistence),
    ]
    spec: shapes.Obj = {
        "serviceName": names.headless,
        "replicas": settings.node_count,
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate"},
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": labels, "annotations": rollout},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": shapes.pod_security_context(run_as_user=REDIS_UID, fs_group=REDIS_UID),
                "terminationGracePeriodSeconds": settings.termination_grace_seconds,
                "containers": containers,
                "volumes": volumes,
                **shapes.spread(selector, require_separate_nodes=settings.require_separate_nodes),
                **shapes.image_pull_secrets(args.image_pull_secrets),
            },
        },
    }
    # Kept on scale-in and on deletion: a node removed outside the drain path (say
    # `kubectl scale`) comes back with its slots and data instead of empty.
    return spec | shapes.volume_claim_templates(DATA_CLAIM, settings.persistence, args.storage_class, labels)
