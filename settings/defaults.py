"""Per-profile defaults, in the stack-config shape (camelCase, as in the guide's values
files). The stack's own config is deep-merged over them before validation, so a
``Pulumi.<stack>.yaml`` only states what differs. ``dev`` is one node of everything with
the HPAs off; ``prod`` is the guide's values-prod topology.

Each default lives in one place, in three layers: the models' own ``Field`` defaults
(``model_defaults``), then ``_COMMON`` for what no model can default (images, resources,
per-tier values of the one AppSettings model), then the profile's changes. A layer never
restates the one beneath it: tests/unit/test_settings.py removes each value in turn and
fails when nothing changes.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

APP_TAG = "v0.3.8"  # the application release the guide deploys


# The guide's values-prod HPA behaviour: scale up by whole pods within a minute, scale
# down slowly (10 % a minute after five quiet minutes) so a short dip does not drop
# capacity that is needed again moments later.
def _behavior(scale_up_pods: int) -> dict[str, Any]:
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 60,
            "policies": [{"type": "Pods", "value": scale_up_pods, "periodSeconds": 60}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
        },
    }


def _resources(
    cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str, *, storage: tuple[str, str]
) -> dict[str, Any]:
    """``storage``: the ephemeral-storage (request, limit), the node disk the container
    fills: its log (the kubelet keeps 5 rotated files of 10 MiB, so about 64Mi) and the
    emptyDirs it writes (each capped by its sizeLimit, in the component). The request is
    what a running pod holds, the limit what it may reach before it is evicted alone."""
    storage_request, storage_limit = storage
    return {
        "requests": {"cpu": cpu_request, "memory": memory_request, "ephemeralStorage": storage_request},
        "limits": {"cpu": cpu_limit, "memory": memory_limit, "ephemeralStorage": storage_limit},
    }


def _app(repository: str, port: int, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "image": {"repository": repository, "tag": APP_TAG},
        "service": {"port": port, "targetPort": port},
        "resources": resources,
    }


# What the models cannot default: the images, resources and ports of each system, and the
# values one model (AppSettings, for three tiers) holds differently per tier. Nothing
# here restates a model default (tests/unit/test_settings.py holds it to that).
_COMMON: dict[str, Any] = {
    "patroni": {
        # Built from images/patroni/Dockerfile: the PostgreSQL and Patroni versions the
        # conformance tests run (tools/ci/install-postgres.sh).
        "image": {"repository": "ai-infra-patroni", "tag": "4.1.5-pg15"},
        "postgresql": {
            "parameters": {
                "max_connections": 200,
                "shared_buffers": "256MB",
                "effective_cache_size": "1GB",
                "work_mem": "4MB",
                "maintenance_work_mem": "64MB",
                "wal_level": "replica",
                "hot_standby": "on",
                # The nightly pg_dump reads a replica; without feedback a long dump is
                # cancelled by recovery conflicts ("canceling statement due to conflict").
                "hot_standby_feedback": "on",
                "wal_log_hints": "on",
                "max_wal_senders": 10,
                "max_replication_slots": 10,
                "wal_keep_size": "256MB",
                "max_wal_size": "1GB",
                "password_encryption": "scram-sha-256",
                "log_min_duration_statement": 1000,
            },
            "pgHba": [
                # `kubectl exec ai-infra-patroni-0 -- pg_dump -U postgres ...` as the image's postgres user
                "local all all peer",
                "host all all 127.0.0.1/32 scram-sha-256",
                "host all all ::1/128 scram-sha-256",
                "host replication all 0.0.0.0/0 scram-sha-256",
                "host replication all ::/0 scram-sha-256",
                "host all all 0.0.0.0/0 scram-sha-256",
                "host all all ::/0 scram-sha-256",
            ],
        },
        # Log (PostgreSQL logs to stderr) + /tmp (64Mi) + the socket dir (1Mi); PGDATA is the claim.
        "resources": _resources("250m", "512Mi", "1000m", "2Gi", storage=("64Mi", "256Mi")),
    },
    "redisCluster": {
        # Built from images/redis/Dockerfile: Debian's redis-server 7.0.15, the version the
        # conformance tests run; the upstream redis:7.0.15 is a compatible alternative.
        "image": {"repository": "ai-infra-redis", "tag": "7.0.15"},
        # Log + /tmp (32Mi); /data is the claim.
        "resources": _resources("100m", "256Mi", "500m", "1Gi", storage=("64Mi", "256Mi")),
    },
    "kafka": {
        # Built from images/kafka/Dockerfile: the jars of tools/ci/kafka-pom.xml, the version the
        # conformance tests run; the upstream apache/kafka:4.1.1 is a compatible alternative.
        "image": {"repository": "ai-infra-kafka", "tag": "4.1.1"},
        # Log + /tmp (64Mi: the rendered server.properties, native compression libraries) +
        # LOG_DIR (128Mi: the GC log, capped at 4 x 16 MB); the partitions are the claim.
        # Memory, measured on the local cluster (tools/benchmark/cluster_memory.py): G1 comes
        # to touch the whole heap (-Xms = -Xmx) while the live set after a GC was 162 MiB
        # under the drills' writers, and the JVM's own memory beside the heap was ~240 MiB.
        # So the heap (half the limit) is 1.5 GiB, nine times that live set, and the request
        # is the heap plus the JVM's own (kafka_topology.JVM_NON_HEAP_MIB): what a broker
        # comes to hold, not a guess the kubelet would evict it above.
        "resources": _resources("500m", "1792Mi", "2000m", "3Gi", storage=("128Mi", "512Mi")),
    },
    "backend": {
        # The application tiers are not this project's images: their writable paths (/tmp,
        # nginx's cache of buffered bodies) may each take up to the limit, the pod's total.
        **_app("ai-infra-backend", 8082, _resources("250m", "512Mi", "1000m", "2Gi", storage=("256Mi", "1Gi"))),
        "livenessProbe": {"timeoutSeconds": 5},
        "env": {"JWT_EXPIRY": "24h", "JWT_REFRESH_EXPIRY": "168h", "SESSION_TIMEOUT": "86400", "LOG_LEVEL": "info"},
    },
    # The web tiers answer on / (the backend on /health) and start faster.
    "frontend": {
        **_app("ai-infra-frontend", 80, _resources("100m", "128Mi", "500m", "512Mi", storage=("64Mi", "256Mi"))),
        "livenessProbe": {"initialDelaySeconds": 10},
        "readinessProbe": {"path": "/", "initialDelaySeconds": 5},
    },
    "nginx": {
        **_app("ai-infra-nginx", 80, _resources("100m", "128Mi", "300m", "256Mi", storage=("128Mi", "1Gi"))),
        "livenessProbe": {"initialDelaySeconds": 10},
        "readinessProbe": {"path": "/", "initialDelaySeconds": 5},
    },
}

_DEV: dict[str, Any] = {"namespace": "ai-infra"}

_PROD: dict[str, Any] = {
    "namespace": "ai-infra-prod",
    # Acknowledged commits survive a failover; not strict, so losing a replica keeps writes going.
    # No two members on one node: losing a node loses at most one copy of the data.
    "patroni": {"replicaCount": 3, "synchronousMode": "on", "requireSeparateNodes": True},
    # Required anti-affinity: no two Redis pods on one node, so a node failure cannot
    # take a master with its replica (needs at least 6 schedulable nodes).
    "redisCluster": {"masterCount": 3, "replicasPerMaster": 1, "requireSeparateNodes": True},
    "kafka": {
        "replicaCount": 3,
        "config": {
            "defaultReplicationFactor": 3,
            "minInsyncReplicas": 2,
            "offsetsTopicReplicationFactor": 3,
            "transactionStateLogReplicationFactor": 3,
            "transactionStateLogMinIsr": 2,
        },
        # A static quorum of 3 dedicated controllers (ids 0-2); brokers are ids 100+.
        # kafka.controller.replicaCount is 3 by default; the quorum lock is protected, so a
        # change of the voters needs kafka.controller.allowQuorumChange.
        "controller": {"dedicated": True, "protectQuorum": True},
        "ui": {"enabled": True},
    },
    "backend": {
        "replicaCount": 2,
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 10, "behavior": _behavior(4)},
    },
    "frontend": {
        "replicaCount": 2,
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5, "behavior": _behavior(2)},
    },
    "nginx": {
        "replicaCount": 2,
        "service": {"type": "LoadBalancer", "httpsPort": 443, "httpsTargetPort": 443},
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5, "behavior": _behavior(2)},
    },
    # A change that would stop or destroy a data system is refused unless planned (README: "Data safety").
    "dataSafety": {"protect": True},
    # Two weeks of dumps; the volumes sized for them.
    "backup": {"postgres": {"retention": 14, "volumeSize": "100Gi"}, "redis": {"retention": 14, "volumeSize": "20Gi"}},
}

PROFILES = ("dev", "prod")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``: objects merge key by key, anything else (lists
    included) replaces. Neither argument is modified."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults ``model`` declares, in the stack-config shape: a sub-model is walked
    into (its own default dumped, or its class's defaults when the field is required), so
    a stack that sets one key of a block keeps the defaults of the others. Dict-valued
    fields (labels, env) are left to the model: a stack's dict replaces the default one
    rather than merging into it."""
    return _defaults_of(model, None)


def _defaults_of(model: type[BaseModel], instance: BaseModel | None) -> dict[str, Any]:
    """Config-shaped defaults of ``model``, read from ``instance`` (a sub-model's default
    object) when there is one, else from the fields' own defaults."""
    defaults: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # credentials: never defaulted, never config-shaped
        key = field.alias or name
        value = getattr(instance, name) if instance is not None else field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            defaults[key] = _defaults_of(type(value), value)
        elif value is PydanticUndefined:
            nested = _model_in(field.annotation)
            if nested is not None:
                defaults[key] = _defaults_of(nested, None)
        elif not isinstance(value, dict):
            defaults[key] = value
    return defaults


def profile_defaults(profile: str) -> dict[str, Any]:
    """Every default of ``profile`` ("dev" or "prod") as a config-shaped dict: the models'
    own defaults, what only this file knows (_COMMON), then the profile's changes."""
    from settings.platform import PlatformSettings

    return deep_merge(deep_merge(model_defaults(PlatformSettings), _COMMON), _PROD if profile == "prod" else _DEV)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a required field holds (``X``; not ``X | None``, not a list of X)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
