"""Per-profile defaults, written in the stack-config shape (camelCase, as in the guide's
values files). The stack's own config is deep-merged over these before validation, so a
``Pulumi.<stack>.yaml`` only states what differs. ``dev`` is one node of everything with
the HPAs off; ``prod`` is the guide's values-prod topology."""

from __future__ import annotations

import copy
from typing import Any

APP_TAG = "v0.3.8"  # the application release the guide deploys


# The guide's values-prod HPA behaviour: scale up by whole pods within a minute, scale
# down slowly (10 % a minute after five quiet minutes) so a short dip does not drop
# capacity that is needed again moments later.
def _behavior(scale_up_pods: int) -> dict[str, Any]:
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": scale_up_pods, "periodSeconds": 60}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
        },
    }


def _resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu_request, "memory": memory_request},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def _app(repository: str, port: int, target_port: int, service_type: str = "ClusterIP") -> dict[str, Any]:
    return {
        "enabled": True,
        "replicaCount": 1,
        "image": {"repository": repository, "tag": APP_TAG, "pullPolicy": "IfNotPresent"},
        "service": {"type": service_type, "port": port, "targetPort": target_port},
        "autoscaling": {
            "enabled": False,
            "minReplicas": 1,
            "maxReplicas": 1,
            "targetCPUUtilizationPercentage": 70,
            "targetMemoryUtilizationPercentage": 80,
        },
    }


_COMMON: dict[str, Any] = {
    "releaseName": "ai-infra",
    "storageClass": "",
    "imagePullSecrets": [],
    "kubernetes": {"kubeconfig": "", "context": "", "renderYamlToDirectory": ""},
    "patroni": {
        "enabled": True,
        "replicaCount": 1,
        # Built from images/patroni/Dockerfile: the PostgreSQL and Patroni versions the
        # conformance tests run (tools/ci/install-postgres.sh).
        "image": {"repository": "ai-infra-patroni", "tag": "4.1.5-pg15", "pullPolicy": "IfNotPresent"},
        "postgresql": {
            "database": "ai_infra_db",
            "username": "postgres",
            "appUsername": "ai_infra_db",
            "replicationUsername": "replicator",
            "rewindUsername": "rewind_user",
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
        "persistence": {"enabled": True, "size": "20Gi", "storageClass": ""},
        "resources": _resources("250m", "512Mi", "1000m", "2Gi"),
        # Failover timing: a dead primary's lock expires within ttl; loopWait + 2*retryTimeout <= ttl.
        "ttl": 20,
        "loopWait": 5,
        "retryTimeout": 5,
        "failsafeMode": True,
        "synchronousMode": "off",
        "synchronousModeStrict": False,
        "synchronousNodeCount": 1,
        "maximumLagOnFailover": 1048576,
        "primaryStartTimeout": 300,
        "terminationGracePeriodSeconds": 300,
        "runAsUser": 999,
    },
    "redisCluster": {
        "enabled": True,
        "masterCount": 1,
        "replicasPerMaster": 0,
        "port": 6379,
        "image": {"repository": "redis", "tag": "7.0.15", "pullPolicy": "IfNotPresent"},
        "persistence": {"enabled": True, "size": "5Gi", "storageClass": ""},
        "resources": _resources("100m", "256Mi", "500m", "1Gi"),
        "clusterNodeTimeout": 5000,
        "maxmemoryPercent": 75,
        "maxmemoryPolicy": "allkeys-lru",
        "failoverTimeoutSeconds": 20,
        "requireSeparateNodes": False,
        "drain": {"enabled": False},
        "exporter": {
            "enabled": True,
            "image": {"repository": "oliver006/redis_exporter", "tag": "v1.62.0", "pullPolicy": "IfNotPresent"},
            "resources": _resources("10m", "32Mi", "100m", "64Mi"),
        },
    },
    "kafka": {
        "enabled": True,
        "replicaCount": 1,
        # The same version as the jars the conformance tests run (tools/ci/kafka-pom.xml).
        "image": {"repository": "apache/kafka", "tag": "4.1.1", "pullPolicy": "IfNotPresent"},
        "config": {
            "autoCreateTopicsEnable": True,
            "numPartitions": 3,
            "defaultReplicationFactor": 1,
            "minInsyncReplicas": 1,
            "offsetsTopicReplicationFactor": 1,
            "transactionStateLogReplicationFactor": 1,
            "transactionStateLogMinIsr": 1,
            "uncleanLeaderElectionEnable": False,
            "logRetentionHours": 168,
            "logRetentionBytes": 10737418240,
            # Kafka's own failover timing, stated so a reviewer sees it.
            "brokerSessionTimeoutMs": 9000,
            "brokerHeartbeatIntervalMs": 2000,
            "controllerQuorumFetchTimeoutMs": 2000,
            "controllerQuorumElectionTimeoutMs": 1000,
        },
        # dev: one combined broker+controller node.
        "controller": {
            "dedicated": False,
            "replicaCount": 3,
            "allowQuorumChange": False,
            "persistence": {"enabled": True, "size": "10Gi", "storageClass": ""},
            "resources": _resources("250m", "1Gi", "1000m", "2Gi"),
        },
        "persistence": {"enabled": True, "size": "50Gi", "storageClass": ""},
        "resources": _resources("500m", "1Gi", "2000m", "4Gi"),
        "ui": {"enabled": False, "image": {"repository": "ghcr.io/kafbat/kafka-ui", "tag": "v1.4.2"}, "username": "admin"},
        "exporter": {"enabled": True, "image": {"repository": "danielqsj/kafka-exporter", "tag": "v1.9.0"}},
    },
    "backend": {
        **_app("ai-infra-backend", 8082, 8082),
        "resources": _resources("250m", "512Mi", "1000m", "2Gi"),
        "livenessProbe": {
            "path": "/health",
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "path": "/health",
            "initialDelaySeconds": 10,
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "env": {"JWT_EXPIRY": "24h", "JWT_REFRESH_EXPIRY": "168h", "SESSION_TIMEOUT": "86400", "LOG_LEVEL": "info"},
    },
    "frontend": {
        **_app("ai-infra-frontend", 80, 80),
        "resources": _resources("100m", "128Mi", "500m", "512Mi"),
        "livenessProbe": {
            "path": "/",
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {"path": "/", "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
    },
    "nginx": {
        **_app("ai-infra-nginx", 80, 80),
        "resources": _resources("100m", "128Mi", "300m", "256Mi"),
        "livenessProbe": {
            "path": "/",
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {"path": "/", "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
    },
    # Scheduled backups (components/backups.py): a pg_dump of the application database
    # and an RDB snapshot of every Redis master, each on its own volume.
    "backup": {
        "enabled": True,
        "destination": "pvc",
        "timeZone": "Etc/UTC",
        "postgres": {"enabled": True, "schedule": "0 2 * * *", "retention": 7, "source": "replica", "volumeSize": "20Gi"},
        "redis": {"enabled": True, "schedule": "30 2 * * *", "retention": 7, "volumeSize": "10Gi"},
        "resources": _resources("100m", "128Mi", "1000m", "512Mi"),
        # destination s3: any S3-compatible store; the keys come from an existing Secret.
        "s3": {
            "endpoint": "",
            "bucket": "",
            "prefix": "ai-infra-matrix",
            "region": "us-east-1",
            "credentialsSecret": "",
            "image": {"repository": "amazon/aws-cli", "tag": "2.22.35", "pullPolicy": "IfNotPresent"},
        },
    },
}

_DEV: dict[str, Any] = {"namespace": "ai-infra"}

_PROD: dict[str, Any] = {
    "namespace": "ai-infra-prod",
    # Acknowledged commits survive a failover; not strict, so losing a replica keeps writes going.
    "patroni": {"replicaCount": 3, "synchronousMode": "on"},
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
        "controller": {"dedicated": True, "replicaCount": 3},
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


def profile_defaults(profile: str) -> dict[str, Any]:
    """Every default of ``profile`` ("dev" or "prod") as a config-shaped dict."""
    return deep_merge(_COMMON, _PROD if profile == "prod" else _DEV)
