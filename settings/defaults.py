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
        "image": {"repository": "ai-infra-patroni", "tag": "4.1.5-pg15", "pullPolicy": "IfNotPresent"},
        "postgresql": {"database": "ai_infra_db", "username": "postgres"},
        "persistence": {"enabled": True, "size": "20Gi", "storageClass": ""},
        "resources": _resources("250m", "512Mi", "1000m", "2Gi"),
    },
    "redisCluster": {
        "enabled": True,
        "masterCount": 1,
        "replicasPerMaster": 0,
        "port": 6379,
        "image": {"repository": "redis", "tag": "7.0.15", "pullPolicy": "IfNotPresent"},
        "persistence": {"enabled": True, "size": "5Gi", "storageClass": ""},
        "resources": _resources("100m", "256Mi", "500m", "1Gi"),
    },
    "kafka": {
        "enabled": True,
        "replicaCount": 1,
        "image": {"repository": "apache/kafka", "tag": "4.1.1", "pullPolicy": "IfNotPresent"},
        "config": {
            "autoCreateTopicsEnable": True,
            "numPartitions": 3,
            "defaultReplicationFactor": 1,
            "minInsyncReplicas": 1,
            "logRetentionHours": 168,
            "logRetentionBytes": 10737418240,
        },
        "persistence": {"enabled": True, "size": "50Gi", "storageClass": ""},
        "resources": _resources("500m", "1Gi", "2000m", "4Gi"),
        "ui": {"enabled": False},
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
}

_DEV: dict[str, Any] = {"namespace": "ai-infra"}

_PROD: dict[str, Any] = {
    "namespace": "ai-infra-prod",
    "patroni": {"replicaCount": 3},
    "redisCluster": {"masterCount": 3, "replicasPerMaster": 1},
    "kafka": {
        "replicaCount": 3,
        "config": {"defaultReplicationFactor": 3, "minInsyncReplicas": 2},
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
