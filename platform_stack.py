"""Composition: the namespace, the Kubernetes provider, the data systems and the
application tier, wired together, and the stack outputs other projects consume.

Every stack output is listed in ``OUTPUTS`` (and in the README's outputs contract):
flat camelCase keys, credentials as secret outputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components import change_locks
from components import k8s as shapes
from components import kube_objects as kube
from components.autoscaled_app import AppOutputs, AutoscaledApp, AutoscaledAppArgs
from components.backups import Backups, BackupsArgs
from components.credentials import credential
from components.kafka_kraft import KafkaKRaft, KafkaKRaftArgs
from components.monitoring import Monitoring
from components.network_policy import (
    Flow,
    NamespaceIsolation,
    NamespaceIsolationArgs,
    PlatformNetworkPolicies,
    PlatformNetworkPoliciesArgs,
)
from components.postgres_ha import PostgresHA, PostgresHAArgs, PostgresOutputs
from components.redis_cluster import RedisCluster, RedisClusterArgs, RedisOutputs
from components.wiring import Pods
from platform_flows import DeployedParts, platform_flows
from platform_monitoring import monitoring_args
from settings import PlatformSettings

# name -> what a consumer reads it for. Tests hold the program to exactly these keys.
OUTPUTS: dict[str, str] = {
    "namespace": "namespace every object of the stack lives in",
    "releaseName": "prefix of every object name (pods are <releaseName>-<system>-<n>)",
    "backendHost": "in-cluster DNS name of the backend Service",
    "backendPort": "port of the backend Service",
    "frontendHost": "in-cluster DNS name of the frontend Service",
    "frontendPort": "port of the frontend Service",
    "nginxHost": "in-cluster DNS name of the nginx Service (the platform's entry point)",
    "nginxPort": "HTTP port of the nginx Service",
    "nginxServiceType": "ClusterIP, NodePort or LoadBalancer",
    "nginxExternalAddress": "load balancer IP or hostname once the cloud assigns one, else empty",
    "appSecretName": "Secret holding the backend's JWT and session secrets",
    "postgresPrimaryHost": "in-cluster DNS name of the Service that always points at the Patroni leader (read-write)",
    "postgresReplicaHost": "in-cluster DNS name of the Service over the streaming replicas (read-only; the primary in dev)",
    "postgresPort": "PostgreSQL port of both Services",
    "postgresDatabase": "the application database",
    "postgresUser": "the application user (owner of the application database)",
    "postgresPassword": "the application user's password (secret)",
    "redisSeedHost": "in-cluster DNS name of the Redis client Service: a seed for cluster clients (cluster mode on)",
    "redisPort": "Redis client port",
    "redisPassword": "the Redis password (secret)",
    "kafkaBootstrapServers": "host:port of the Kafka client Service (brokers only) for bootstrap.servers",
    "kafkaUiUrl": "in-cluster URL of Kafka UI (login required; user kafka.ui.username, password kafkaUiPassword), else empty",
    "minimumNodes": "fewest schedulable nodes this config's required anti-affinity can be placed on (one more to drain a node)",
}
SECRET_OUTPUTS: frozenset[str] = frozenset({"postgresPassword", "redisPassword"})


class _Placement(TypedDict):
    """Where every component goes and what every pod pulls with: the args all share."""

    release: str
    namespace: str
    cluster_domain: str
    image_pull_secrets: list[str]


@dataclass(frozen=True)
class Platform:
    """What the program built: the stack outputs by name, and the flow table the network
    policies allow (the README's flow table is generated from it)."""

    outputs: dict[str, pulumi.Output]
    flows: list[Flow]


def build_platform(settings: PlatformSettings) -> Platform:
    """Register every resource of the stack; return the stack outputs and the flows."""
    steps = platform_steps(settings)
    while (platform := next(steps)) is None:
        pass
    return platform


# How long each pause lets the event loop run: long enough for the registrations made so
# far to reach the gRPC threads (several loop turns), short against building a system.
PAUSE_SECONDS = 0.001


async def build_platform_yielding(settings: PlatformSettings) -> Platform:
    """build_platform for the real engine. A Python program's registrations wait on the
    event loop, which runs only after the program's own code, so without pauses the engine
    gets nothing until the whole platform is built and only then starts the Kubernetes
    provider and works through the objects. Pausing after each system sends what is built
    so far: the engine starts the provider and checks the first systems' objects while
    Python builds the next ones (on a second core)."""
    steps = platform_steps(settings)
    while (platform := next(steps)) is None:
        await asyncio.sleep(PAUSE_SECONDS)
    return platform


def platform_steps(settings: PlatformSettings) -> Iterator[Platform | None]:  # noqa: PLR0915 (one block per system, in order)
    """The registrations of build_platform: None after each system (a point to pause at),
    then the Platform."""
    provider = _provider(settings)
    safety = settings.data_safety
    # Moving the stack re-creates every object under new names and deletes the old ones,
    # StatefulSets included: refused while the data systems are protected.
    placement_lock = change_locks.change_lock(
        ["namespace", "releaseName"],
        "dataSafety.allowRemoval",
        shape={"namespace": settings.namespace, "releaseName": settings.release_name},
        locked=safety.removal_locked,
    )
    namespace = kube.Namespace(
        "namespace",
        metadata={
            "name": settings.namespace,
            "labels": {
                **shapes.pod_security_labels(settings.pod_security_level),
                "app.kubernetes.io/part-of": shapes.PART_OF,
                "app.kubernetes.io/instance": settings.release_name,
                "app.kubernetes.io/managed-by": "pulumi",
            },
        },
        # `pulumi destroy` leaves the namespace, and with it the PersistentVolumeClaims the
        # StatefulSets created: data outlives the stack, as with `helm uninstall`. Delete
        # the PVCs (or the namespace) by hand once the data is no longer wanted.
        opts=pulumi.ResourceOptions(provider=provider, retain_on_delete=True, depends_on=[placement_lock]),
    )
    in_namespace = pulumi.ResourceOptions(provider=provider, depends_on=[namespace])
    if settings.network_policy.enabled:
        # Default deny before any workload, and every workload waits for it: no pod runs
        # unprotected, even when a first `pulumi up` fails before the per-group policies.
        isolation = NamespaceIsolation(
            "network-isolation",
            NamespaceIsolationArgs(settings.release_name, settings.namespace, settings.network_policy),
            opts=in_namespace,
        )
        in_namespace = pulumi.ResourceOptions(provider=provider, depends_on=[namespace, isolation])
    yield None
    common = _Placement(
        release=settings.release_name,
        namespace=settings.namespace,
        cluster_domain=settings.cluster_domain,
        image_pull_secrets=list(settings.image_pull_secrets),
    )
    # The backup claims are retained whatever happens to the config, so their lock is
    # registered whether backups are on or not: re-enabling finds the old claims.
    backup_claims_lock = change_locks.change_lock(
        ["backup.storageClass", "storageClass"],
        "dataSafety.allowVolumeClaimChange",
        shape={"storageClass": settings.backup.storage_class or settings.storage_class},
        locked=safety.volume_claims_locked,
    )

    # The data systems; each one's typed outputs become the backend's env and stack outputs here.
    backend_env: list[shapes.Obj] = []
    outputs: dict[str, pulumi.Output] = {}
    postgres = redis = kafka = None
    if settings.patroni.enabled:
        postgres = PostgresHA(
            "postgres",
            PostgresHAArgs(
                settings=settings.patroni,
                superuser_password=settings.secrets.postgres_password,
                data_safety=safety,
                replication_password=settings.secrets.replication_password,
                storage_class=settings.storage_class,
                **common,
            ),
            opts=in_namespace,
        )
        backend_env += _postgres_env(postgres.outputs)
        outputs |= _postgres_outputs(postgres)
        yield None
    if settings.redis_cluster.enabled:
        redis = RedisCluster(
            "redis",
            RedisClusterArgs(
                settings=settings.redis_cluster,
                password=settings.secrets.redis_password,
                data_safety=safety,
                storage_class=settings.storage_class,
                **common,
            ),
            opts=in_namespace,
        )
        backend_env += _redis_env(redis.outputs)
        outputs |= _redis_outputs(redis)
        yield None
    if settings.kafka.enabled:
        kafka = KafkaKRaft(
            "kafka",
            KafkaKRaftArgs(
                settings=settings.kafka,
                storage_class=settings.storage_class,
                ui_password=settings.secrets.kafka_ui_password,
                data_safety=safety,
                **common,
            ),
            opts=in_namespace,
        )
        backend_env.append(shapes.env_value("KAFKA_BOOTSTRAP_SERVERS", kafka.outputs.bootstrap_servers))
        outputs |= {
            "kafkaBootstrapServers": pulumi.Output.from_input(kafka.outputs.bootstrap_servers),
            "kafkaUiUrl": pulumi.Output.from_input(kafka.outputs.ui_url),
        }
        yield None
    backups: dict[str, Pods] = {}
    if settings.backup.enabled:
        # Scheduled pg_dump and Redis snapshots, reading the passwords from the Secrets above.
        backups = Backups(
            "backups",
            BackupsArgs(
                release=settings.release_name,
                namespace=settings.namespace,
                settings=settings.backup,
                postgres=postgres.outputs if postgres else None,
                redis=redis.outputs if redis else None,
                storage_class=settings.storage_class,
                image_pull_secrets=list(settings.image_pull_secrets),
                claims_lock=backup_claims_lock,
            ),
            opts=in_namespace,
        ).pods
        yield None

    app_secret = _app_secret(settings, in_namespace)
    backend_env += [
        shapes.env_from_secret("JWT_SECRET", app_secret.metadata["name"], "jwt-secret"),
        shapes.env_from_secret("SESSION_SECRET", app_secret.metadata["name"], "session-secret"),
    ]

    apps: dict[str, AppOutputs] = {}
    nginx: AutoscaledApp | None = None
    for app, app_settings in settings.apps.items():
        if not app_settings.enabled:
            continue
        component = AutoscaledApp(
            app,
            AutoscaledAppArgs(app=app, settings=app_settings, extra_env=backend_env if app == "backend" else [], **common),
            opts=in_namespace,
        )
        apps[app] = component.outputs
        outputs[f"{app}Host"] = pulumi.Output.from_input(component.outputs.host)
        outputs[f"{app}Port"] = pulumi.Output.from_input(component.outputs.port)
        nginx = component if app == "nginx" else nginx
        yield None
    if nginx is not None:
        outputs["nginxServiceType"] = pulumi.Output.from_input(nginx.outputs.service_type)
        outputs["nginxExternalAddress"] = nginx.service.status.apply(_external_address)

    parts = DeployedParts(
        postgres.outputs if postgres else None, redis.outputs if redis else None, kafka.outputs if kafka else None, apps, backups
    )
    if settings.monitoring.enabled:
        # ServiceMonitors, PrometheusRules and Grafana dashboards (Prometheus Operator CRDs).
        Monitoring("monitoring", monitoring_args(settings, parts), opts=in_namespace)

    flows = platform_flows(
        parts, policy=settings.network_policy, monitoring_namespace=settings.monitoring.namespace, backup=settings.backup
    )
    if settings.network_policy.enabled:
        # Each flow of the platform allowed by name, one policy per group of pods.
        PlatformNetworkPolicies(
            "network-policies",
            PlatformNetworkPoliciesArgs(
                settings.release_name, settings.namespace, settings.network_policy, parts.groups(), flows
            ),
            opts=in_namespace,
        )

    outputs |= {
        "namespace": namespace.metadata["name"],
        "releaseName": pulumi.Output.from_input(settings.release_name),
        "appSecretName": app_secret.metadata["name"],
        # Known from the config alone; the program cannot see the cluster's nodes (no
        # list invoke in the provider, and no cluster at all in render mode).
        "minimumNodes": pulumi.Output.from_input(settings.minimum_nodes),
    }
    yield Platform(outputs | _outputs_of_disabled_parts(outputs), flows)


# --- what each system's outputs mean to the backend and to the stack's consumers -------


def _postgres_env(postgres: PostgresOutputs) -> list[shapes.Obj]:
    """The backend's DB_* contract."""
    return [
        shapes.env_value("DB_HOST", postgres.primary_host),
        shapes.env_value("DB_PORT", str(postgres.port)),
        shapes.env_value("DB_NAME", postgres.database),
        shapes.env_value("DB_USER", postgres.app_user),
        postgres.app_password.env("DB_PASSWORD"),
        shapes.env_value("DB_SSLMODE", "disable"),
    ]


def _postgres_outputs(postgres: PostgresHA) -> dict[str, pulumi.Output]:
    connection = postgres.outputs
    return {
        "postgresPrimaryHost": pulumi.Output.from_input(connection.primary_host),
        "postgresReplicaHost": pulumi.Output.from_input(connection.replica_host),
        "postgresPort": pulumi.Output.from_input(connection.port),
        "postgresDatabase": pulumi.Output.from_input(connection.database),
        "postgresUser": pulumi.Output.from_input(connection.app_user),
        "postgresPassword": postgres.app_password,
    }


def _redis_env(redis: RedisOutputs) -> list[shapes.Obj]:
    """The backend's REDIS_* contract: a cluster client seeded by the client Service."""
    return [
        shapes.env_value("REDIS_HOST", redis.seed_host),
        shapes.env_value("REDIS_PORT", str(redis.port)),
        shapes.env_value("REDIS_CLUSTER", "true"),
        redis.password.env("REDIS_PASSWORD"),
    ]


def _redis_outputs(redis: RedisCluster) -> dict[str, pulumi.Output]:
    return {
        "redisSeedHost": pulumi.Output.from_input(redis.outputs.seed_host),
        "redisPort": pulumi.Output.from_input(redis.outputs.port),
        "redisPassword": redis.password,
    }


def _outputs_of_disabled_parts(outputs: dict[str, pulumi.Output]) -> dict[str, pulumi.Output]:
    """The contract keeps every key: what a disabled part would export is empty (0 for
    ports), and still secret where the key is a secret output."""
    empty = {key: 0 if key.endswith("Port") else "" for key in OUTPUTS if key not in outputs}
    return {
        key: pulumi.Output.secret(value) if key in SECRET_OUTPUTS else pulumi.Output.from_input(value)
        for key, value in empty.items()
    }


def _provider(settings: PlatformSettings) -> k8s.Provider:
    """The explicit provider every resource uses (the default provider is disabled in
    the stack files, so nothing can reach a cluster the config did not name)."""
    cluster = settings.kubernetes
    if cluster.render_yaml_to_directory:
        # An explicit empty kubeconfig: the SDK would otherwise default it from $KUBECONFIG,
        # which the provider refuses together with renderYamlToDirectory.
        # The same diff rules as against a cluster, so a render-mode preview plans what a
        # real one would.
        return k8s.Provider(
            "kubernetes",
            render_yaml_to_directory=cluster.render_yaml_to_directory,
            kubeconfig="",
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
        )
    return k8s.Provider(
        "kubernetes",
        kubeconfig=cluster.kubeconfig or None,
        context=cluster.context or None,
        namespace=settings.namespace,
        # A changed ConfigMap or Secret is updated in place (the pods roll by their config
        # and credentials checksums); off, the provider replaces it, deleting the live one.
        enable_config_map_mutable=True,
        enable_secret_mutable=True,
    )


def _app_secret(settings: PlatformSettings, opts: pulumi.ResourceOptions) -> kube.Secret:
    """The backend's signing secrets, generated once unless given with --secret."""
    name = f"{settings.release_name}-app-secrets"
    return kube.Secret(
        "app-secrets",
        metadata=shapes.metadata(name, settings.namespace, shapes.common_labels(settings.release_name, "backend", "secrets")),
        type="Opaque",
        string_data={
            "jwt-secret": credential("jwt-secret", settings.secrets.jwt_secret, length=48),
            "session-secret": credential("session-secret", settings.secrets.session_secret, length=48),
        },
        opts=opts,
    )


def _external_address(status: dict[str, Any] | None) -> str:
    """The Service's load balancer address from its status (a camelCase dict), else ""."""
    for entry in ((status or {}).get("loadBalancer") or {}).get("ingress") or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return str(address)
    return ""
