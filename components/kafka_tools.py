"""Kafka's companions, each optional: kafka-exporter (topic, partition and consumer-lag
metrics for Prometheus) and Kafka UI (kafbat, read-only, behind a login form). KafkaKRaft
registers them as its children when kafka.exporter.enabled / kafka.ui.enabled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pulumi

from components import k8s as shapes
from components import kube_objects as kube
from components.credentials import credential
from components.kafka_topology import EXPORTER_PORT, UI_PORT, KafkaNames, heap_mib

if TYPE_CHECKING:
    from components.kafka_kraft import KafkaKRaftArgs

# Neither image needs a particular uid (they write only /tmp): a high one cannot clash
# with a host user.
UI_UID = 65534
EXPORTER_UID = 65534


def exporter(
    parent: pulumi.Resource,
    name: str,
    args: KafkaKRaftArgs,
    names: KafkaNames,
    bootstrap: str,
    *,
    after: Sequence[pulumi.Resource] = (),
) -> kube.Deployment:
    """kafka-exporter: topic, partition and consumer-group lag metrics on :9308, created
    ``after`` the brokers (it exits until one answers)."""
    child = pulumi.ResourceOptions(parent=parent, depends_on=list(after))
    wanted = args.settings.exporter
    full_name = names.exporter
    selector = shapes.selector_labels(args.release, "kafka-exporter")
    labels = shapes.common_labels(args.release, "kafka-exporter", "metrics")
    container: shapes.Obj = {
        "name": "kafka-exporter",
        "image": wanted.image.reference,
        "imagePullPolicy": wanted.image.pull_policy,
        "args": [f"--kafka.server={bootstrap}", "--kafka.version=3.6.0", f"--web.listen-address=:{EXPORTER_PORT}"],
        "ports": [{"name": "metrics", "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        "resources": shapes.container_resources(wanted.resources),
        # Ready: /healthz answers. Alive: the metrics port is open; a scrape slowed by a busy
        # cluster (it asks every broker) does not restart it.
        "readinessProbe": shapes.http_probe("/healthz", "metrics", initial_delay=5, period=10, timeout=3, failures=3),
        "livenessProbe": shapes.tcp_probe("metrics", initial_delay=30, period=20, timeout=5, failures=6),
        "securityContext": shapes.container_security_context(),
    }
    deployment = kube.Deployment(
        f"{name}-exporter",
        metadata=shapes.metadata(
            full_name, args.namespace, labels, shapes.scan_exceptions(shapes.PINNED_IMAGE_SKIPS, _EXPORTER_IGNORES)
        ),
        spec={
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": _plain_pod(args, container, run_as_user=EXPORTER_UID),
            },
        },
        opts=child,
    )
    kube.Service(
        f"{name}-exporter-service",
        metadata=shapes.service_metadata(
            full_name,
            args.namespace,
            labels,
            {"prometheus.io/scrape": "true", "prometheus.io/port": str(EXPORTER_PORT), "prometheus.io/path": "/metrics"},
        ),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "metrics", "port": EXPORTER_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
        opts=child,
    )
    return deployment


def ui(parent: pulumi.Resource, name: str, args: KafkaKRaftArgs, names: KafkaNames, bootstrap: str) -> kube.Deployment:
    """Kafka UI: read-only, login form, credentials from a Secret, no dynamic config."""
    child = pulumi.ResourceOptions(parent=parent)
    wanted = args.settings.ui
    full_name = names.ui
    # Its own name label: no Kafka Service, PDB or anti-affinity selector matches it.
    selector = shapes.selector_labels(args.release, "kafka-ui")
    labels = shapes.common_labels(args.release, "kafka-ui", "ui")
    password = credential("kafka-ui-password", args.ui_password, parent=parent, guards_data=False)
    auth = kube.Secret(
        f"{name}-ui-auth",
        metadata=shapes.metadata(f"{full_name}-auth", args.namespace, labels),
        type="Opaque",
        string_data={"username": wanted.username, "password": password},
        opts=child,
    )
    env = [
        shapes.env_value("KAFKA_CLUSTERS_0_NAME", args.release),
        shapes.env_value("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS", bootstrap),
        shapes.env_value("KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL", "PLAINTEXT"),
        shapes.env_value("KAFKA_CLUSTERS_0_READONLY", "true"),
        shapes.env_value("DYNAMIC_CONFIG_ENABLED", "false"),
        shapes.env_value("AUTH_TYPE", "LOGIN_FORM"),
        shapes.env_from_secret("SPRING_SECURITY_USER_NAME", auth.metadata["name"], "username"),
        shapes.env_from_secret("SPRING_SECURITY_USER_PASSWORD", auth.metadata["name"], "password"),
        shapes.env_value("JAVA_OPTS", f"-Xmx{heap_mib(wanted.resources)}m -Djava.io.tmpdir=/tmp"),
    ]
    container: shapes.Obj = {
        "name": "kafka-ui",
        "image": wanted.image.reference,
        "imagePullPolicy": wanted.image.pull_policy,
        "env": env,
        "ports": [{"name": "http", "containerPort": UI_PORT, "protocol": "TCP"}],
        "resources": shapes.container_resources(wanted.resources),
        "startupProbe": shapes.http_probe("/actuator/health", "http", initial_delay=10, period=5, timeout=3, failures=36),
        # Ready: Spring's health (which includes the cluster connection) is UP. Alive: the
        # HTTP port is open; a Kafka outage takes the UI out of rotation, not into restarts.
        "readinessProbe": shapes.http_probe("/actuator/health", "http", initial_delay=0, period=10, timeout=3, failures=3),
        "livenessProbe": shapes.tcp_probe("http", period=20, timeout=5, failures=6),
        "securityContext": shapes.container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = _plain_pod(args, container, run_as_user=UI_UID)
    # java.io.tmpdir: the JVM's and Spring Boot's temporary files.
    pod["volumes"] = [shapes.scratch_volume("tmp", "128Mi")]
    deployment = kube.Deployment(
        f"{name}-ui",
        metadata=shapes.metadata(full_name, args.namespace, labels, shapes.scan_exceptions(_UI_CHECKOV_SKIPS, _UI_IGNORES)),
        spec={
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": pod,
            },
        },
        opts=child,
    )
    kube.Service(
        f"{name}-ui-service",
        metadata=shapes.service_metadata(full_name, args.namespace, labels),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": UI_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
        opts=child,
    )
    return deployment


# --- private builders ----------------------------------------------------------------

# Why kube-score's findings do not apply: one replica of each tool (see components/k8s.py).
_EXPORTER_IGNORES = {
    "deployment-replicas": (
        "one exporter: each replica would ask every broker for all offsets and be scraped as a separate target, "
        "doubling every series; a lost pod is replaced by the Deployment and costs a scrape or two, not data"
    )
}
_UI_IGNORES = {
    "deployment-replicas": (
        "an operator's read-only console, not a serving path: one replica, and its login session stays in that pod"
    )
}

# Why checkov's findings (and their kube-score twins) do not apply (see components/k8s.py).
_UI_CHECKOV_SKIPS = {
    **shapes.PINNED_IMAGE_SKIPS,
    "CKV_K8S_35": (
        "Kafka UI (Spring Boot) reads its login from SPRING_SECURITY_USER_NAME and _PASSWORD in the "
        "environment, taken from the auth Secret, never the pod spec"
    ),
}


def _plain_pod(args: KafkaKRaftArgs, container: shapes.Obj, *, run_as_user: int) -> shapes.Obj:
    pod: shapes.Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": shapes.pod_security_context(run_as_user=run_as_user),
        "containers": [container],
        **shapes.image_pull_secrets(args.image_pull_secrets),
    }
    return pod
