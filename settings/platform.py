"""The root of the stack config: what one stack of ai-infra-matrix deploys."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from settings.apps import AppSettings
from settings.backup import BackupSettings
from settings.base import ConfigModel, DnsLabel, DnsName, Problem
from settings.data_safety import DataSafetySettings
from settings.kafka import KafkaSettings
from settings.monitoring import MonitoringSettings
from settings.network_policy import NetworkPolicySettings
from settings.postgres import PatroniSettings
from settings.redis import RedisClusterSettings

# host[:port][/path...], as an image reference starts
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$")


class KubernetesSettings(ConfigModel):
    """How the program reaches the cluster. All empty: the ambient KUBECONFIG and its
    current context."""

    kubeconfig: str = Field(default="", description="kubeconfig path or contents; empty: $KUBECONFIG or ~/.kube/config")
    context: str = Field(default="", description="kubeconfig context; empty: the current context")
    render_yaml_to_directory: str = Field(
        default="", description="write manifests to this directory instead of applying them (no cluster needed)"
    )


class SecretSettings(ConfigModel):
    """Credentials given with ``pulumi config set --secret``; each one left unset is
    generated once with pulumi_random and kept in the stack state."""

    postgres_password: SecretStr | None = Field(default=None, description="PostgreSQL superuser password")
    replication_password: SecretStr | None = Field(default=None, description="PostgreSQL replication password")
    redis_password: SecretStr | None = Field(default=None, description="Redis requirepass/masterauth")
    kafka_ui_password: SecretStr | None = Field(default=None, description="Kafka UI login password")
    jwt_secret: SecretStr | None = Field(default=None, description="backend JWT signing secret")
    session_secret: SecretStr | None = Field(default=None, description="backend session secret")


MIN_SECRET_LENGTH = 16


class PlatformSettings(ConfigModel):
    profile: Literal["dev", "prod"] = Field(
        description="dev: one node of everything; prod: the HA topology and its minimums (default: prod for stacks named prod*)"
    )
    release_name: DnsLabel = Field(default="ai-infra", description="prefix of every object name (pods ai-infra-patroni-0, ...)")
    namespace: DnsLabel = Field(description="namespace the program creates and deploys into")
    # The data systems need nothing above restricted; a lower level is for application
    # images that must run as root (the trade-off is in the README's "Pod security").
    pod_security_level: Literal["restricted", "baseline", "privileged"] = Field(
        default="restricted", description="Pod Security level the namespace enforces (restricted, baseline, privileged)"
    )
    cluster_domain: DnsName = Field(
        default="cluster.local",
        description="the cluster's DNS domain (kubelet --cluster-domain): every in-cluster host name ends in svc.<clusterDomain>",
    )
    storage_class: str = Field(default="", description="StorageClass of every volume; empty: the cluster default")
    image_registry: str = Field(
        default="", description="registry (and path) in front of every image this project builds (make images-push REGISTRY=...)"
    )
    image_pull_secrets: list[DnsLabel] = Field(default_factory=list, description="names of existing pull Secrets, for every pod")
    kubernetes: KubernetesSettings = Field(default=KubernetesSettings(), description="how the program reaches the cluster")
    patroni: PatroniSettings = Field(description="PostgreSQL HA (Patroni)")
    redis_cluster: RedisClusterSettings = Field(description="Redis Cluster")
    kafka: KafkaSettings = Field(description="Kafka in KRaft mode")
    backend: AppSettings = Field(description="backend API tier")
    frontend: AppSettings = Field(description="frontend tier")
    nginx: AppSettings = Field(description="nginx entry point")
    monitoring: MonitoringSettings = Field(default=MonitoringSettings(), description="metrics scraping, alerts, dashboards")
    backup: BackupSettings = Field(default=BackupSettings(), description="scheduled PostgreSQL dumps and Redis snapshots")
    network_policy: NetworkPolicySettings = Field(
        default=NetworkPolicySettings(), description="NetworkPolicies: default deny, the platform's flows allowed"
    )
    data_safety: DataSafetySettings = Field(
        default=DataSafetySettings(), description="change locks: config changes that would stop or destroy a data system"
    )
    secrets: SecretSettings = Field(default=SecretSettings(), exclude=True)

    @field_validator("image_registry")
    @classmethod
    def _registry_reference(cls, value: str) -> str:
        if value and not _REGISTRY.match(value):
            raise ValueError(
                "give a registry host with an optional port and path, without a scheme or a trailing slash "
                "(e.g. ghcr.io/acme or registry.example.com:5000)"
            )
        return value

    @property
    def production(self) -> bool:
        return self.profile == "prod"

    @property
    def apps(self) -> dict[str, AppSettings]:
        return {"backend": self.backend, "frontend": self.frontend, "nginx": self.nginx}

    @property
    def separate_node_pods(self) -> dict[str, int]:
        """Pods that each require a node of their own, by workload (its pods'
        app.kubernetes.io/name): the required hostname anti-affinity of each is against
        its own workload's pods only, so pods of different workloads may share a node.
        Everything else (the app tiers, exporters, Kafka UI, Jobs) only prefers to spread."""
        groups: dict[str, int] = {}
        if self.patroni.enabled and self.patroni.require_separate_nodes:
            groups["patroni"] = self.patroni.replica_count
        if self.redis_cluster.enabled and self.redis_cluster.require_separate_nodes:
            groups["redis-cluster"] = self.redis_cluster.node_count
        if self.kafka.enabled:  # always required (components/kafka_kraft.py)
            groups["kafka"] = self.kafka.replica_count
            if self.kafka.controller.dedicated:
                groups["kafka-controller"] = self.kafka.controller.replica_count
        return groups

    @property
    def minimum_nodes(self) -> int:
        """The fewest schedulable nodes on which every pod of the stack can be placed: the
        largest group of pods that require separate nodes. Only the anti-affinity counts
        here (not CPU or memory), and draining a node without a pod left Pending needs
        one more."""
        return max(self.separate_node_pods.values(), default=1)

    def problems(self) -> list[Problem]:
        """Every rule between values, each naming its key. Empty when the config is good."""
        production = self.production
        found = [
            *self.patroni.problems("patroni", production=production),
            *self.redis_cluster.problems("redisCluster", production=production),
            *self.kafka.problems("kafka", production=production),
        ]
        for name, app in self.apps.items():
            found += app.problems(name, production=production)
        found += self.monitoring.problems("monitoring", production=production)
        found += self.backup.problems("backup", production=production)
        found += self.network_policy.problems("networkPolicy", production=production)
        for field, value in self.secrets:
            if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
                key = SecretSettings.model_fields[field].alias or field
                found.append(
                    Problem(
                        key,
                        f"is shorter than {MIN_SECRET_LENGTH} characters; set a longer one with "
                        f"pulumi config set --secret {key} ..., or remove it to have one generated",
                    )
                )
        for name, app in self.apps.items():
            if app.enabled and app.security_context.run_as_user == 0 and self.pod_security_level == "restricted":
                found.append(
                    Problem(
                        f"{name}.securityContext.runAsUser",
                        "0 runs the container as root, which the namespace's restricted Pod Security level refuses; "
                        "run the image as a non-root user it supports (e.g. 1000), or accept the weaker isolation "
                        "with pulumi config set podSecurityLevel baseline",
                    )
                )
        if self.kubernetes.render_yaml_to_directory and (self.kubernetes.kubeconfig or self.kubernetes.context):
            found.append(
                Problem(
                    "kubernetes.renderYamlToDirectory",
                    "render mode writes files and talks to no cluster; unset kubernetes.kubeconfig and "
                    "kubernetes.context, or unset renderYamlToDirectory to deploy",
                )
            )
        return found
