"""Settings of KafkaKRaft: Kafka without ZooKeeper. Keys follow the guide's
``kafka.*`` values."""

from __future__ import annotations

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, PersistenceSettings, Problem, ResourceSettings


class KafkaConfigSettings(ConfigModel):
    auto_create_topics_enable: bool = True
    num_partitions: int = Field(default=3, ge=1)
    default_replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    log_retention_hours: int = Field(default=168, ge=1)
    log_retention_bytes: int = Field(default=10737418240, ge=-1)


class KafkaUiSettings(ConfigModel):
    enabled: bool = False
    image: ImageSettings = ImageSettings(repository="ghcr.io/kafbat/kafka-ui", tag="v1.4.2")
    resources: ResourceSettings = ResourceSettings.model_validate(
        {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    )


class KafkaSettings(ConfigModel):
    enabled: bool = True
    replica_count: int = Field(default=1, ge=1)
    image: ImageSettings
    config: KafkaConfigSettings = KafkaConfigSettings()
    persistence: PersistenceSettings = PersistenceSettings(size="50Gi")
    resources: ResourceSettings
    ui: KafkaUiSettings = KafkaUiSettings()

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if self.ui.enabled:
            found += self.ui.image.problems(f"{key}.ui.image", production=production)
            found += self.ui.resources.problems(f"{key}.ui.resources")
        brokers, config = self.replica_count, self.config
        if config.default_replication_factor > brokers:
            found.append(
                Problem(
                    f"{key}.config.defaultReplicationFactor",
                    f"replication factor {config.default_replication_factor} is larger than the broker count "
                    f"{brokers} (kafka.replicaCount); topics could not be created. Lower it or add brokers",
                )
            )
        if config.min_insync_replicas > config.default_replication_factor:
            found.append(
                Problem(
                    f"{key}.config.minInsyncReplicas",
                    f"minInsyncReplicas {config.min_insync_replicas} is larger than defaultReplicationFactor "
                    f"{config.default_replication_factor}; acks=all writes would always fail",
                )
            )
        if production and self.enabled:
            if brokers < 3:
                found.append(Problem(f"{key}.replicaCount", f"prod needs at least 3 brokers; got {brokers}"))
            if config.default_replication_factor < 3:
                found.append(Problem(f"{key}.config.defaultReplicationFactor", "prod needs a replication factor of at least 3"))
            if config.min_insync_replicas < 2:
                found.append(Problem(f"{key}.config.minInsyncReplicas", "prod needs minInsyncReplicas of at least 2"))
        return found
