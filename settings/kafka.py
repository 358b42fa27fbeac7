"""Settings of KafkaKRaft: Kafka without ZooKeeper. Keys follow the guide's
``kafka.*`` values (``replicaCount`` is the number of brokers); the KRaft controller
quorum has its own ``kafka.controller.*`` block."""

from __future__ import annotations

import base64
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from settings.base import ConfigModel, ImageSettings, PersistenceSettings, Problem, ResourceSettings

# Kafka's Uuid text form: 16 bytes in unpadded base64url, never starting with '-'
# (Uuid.java; kafka-storage random-uuid redraws such IDs because they read as options).
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")


def valid_cluster_id(text: str) -> bool:
    """Whether ``text`` is a Kafka cluster ID that ``kafka-storage format`` accepts."""
    if not _CLUSTER_ID.match(text):
        return False
    try:
        return len(base64.urlsafe_b64decode(text + "==")) == 16
    except ValueError:
        return False


def _check_cluster_id(text: str | None) -> str | None:
    if text is not None and not valid_cluster_id(text):
        raise ValueError(
            f"{text!r} is not a Kafka cluster ID: use the 22-character base64url form of 16 bytes "
            "not starting with '-' (the output of kafka-storage.sh random-uuid, or "
            "kafka-cluster.sh cluster-id of the cluster you adopt)"
        )
    return text


ClusterId = Annotated[str | None, AfterValidator(_check_cluster_id)]

QUORUM_SIZES = (1, 3, 5)


class KafkaConfigSettings(ConfigModel):
    """Broker and topic settings, rendered into every node's server.properties."""

    auto_create_topics_enable: bool = Field(default=True, description="Create a topic on first use (auto.create.topics.enable).")
    num_partitions: int = Field(default=3, ge=1, description="Partitions of a topic created without a count (num.partitions).")
    default_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of a topic created without a factor (default.replication.factor)."
    )
    min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="Replicas that must have a write before an acks=all producer is answered (min.insync.replicas).",
    )
    offsets_topic_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of __consumer_offsets (offsets.topic.replication.factor)."
    )
    transaction_state_log_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of __transaction_state (transaction.state.log.replication.factor)."
    )
    transaction_state_log_min_isr: int = Field(
        default=1, ge=1, description="min.insync.replicas of __transaction_state (transaction.state.log.min.isr)."
    )
    unclean_leader_election_enable: bool = Field(
        default=False,
        description="Let an out-of-sync replica become leader, losing acknowledged writes "
        "(unclean.leader.election.enable). Refused in prod.",
    )
    log_retention_hours: int = Field(default=168, ge=1, description="Hours a log segment is kept (log.retention.hours).")
    log_retention_bytes: int = Field(
        default=10737418240, ge=-1, description="Bytes kept per partition, -1 for no limit (log.retention.bytes)."
    )
    broker_session_timeout_ms: int = Field(
        default=9000,
        ge=1000,
        description="How long the controllers wait for a broker heartbeat before fencing it and moving its "
        "partition leaders (broker.session.timeout.ms; Kafka's default).",
    )
    broker_heartbeat_interval_ms: int = Field(
        default=2000, ge=100, description="How often a broker heartbeats to the controllers (broker.heartbeat.interval.ms)."
    )
    controller_quorum_fetch_timeout_ms: int = Field(
        default=2000,
        ge=100,
        description="How long a controller hears nothing from the active controller before it calls an "
        "election (controller.quorum.fetch.timeout.ms; Kafka's default).",
    )
    controller_quorum_election_timeout_ms: int = Field(
        default=1000,
        ge=100,
        description="How long an election waits for votes before it is retried (controller.quorum.election.timeout.ms).",
    )


class KafkaControllerSettings(ConfigModel):
    """The KRaft controller quorum (prod: its own StatefulSet, fixed at creation)."""

    dedicated: bool = Field(
        default=False,
        description="Run the controller quorum as its own StatefulSet <release>-kafka-controller, so brokers scale "
        "without touching it. false: one combined broker+controller node (dev only).",
    )
    replica_count: int = Field(
        default=3, description="Controllers (KRaft voters) when dedicated: 1, 3 or 5. Fixed for the life of the stack."
    )
    protect_quorum: bool = Field(
        default=False,
        description="Protect the quorum lock in the stack state, so an update that changes the controller count "
        "or mode is refused unless allowQuorumChange is set (dedicated quorum only).",
    )
    allow_quorum_change: bool = Field(
        default=False,
        description="Let one `pulumi up` change the controller count or mode of an existing stack. The static "
        "quorum is rewritten and the metadata log must be rebuilt: only for a planned migration.",
    )
    persistence: PersistenceSettings = Field(
        default=PersistenceSettings(size="10Gi"), description="Volume of each controller (the metadata log)."
    )
    resources: ResourceSettings = Field(
        default=ResourceSettings.model_validate(
            {
                # As a broker's (kafka.resources): log, /tmp and the GC log in LOG_DIR.
                # Memory as a broker's too: a 768 MiB heap (the live set measured after a
                # GC was 26 MiB) plus the JVM's own (~190 MiB measured) within the request.
                "requests": {"cpu": "250m", "memory": "1Gi", "ephemeralStorage": "128Mi"},
                "limits": {"cpu": "1000m", "memory": "1536Mi", "ephemeralStorage": "512Mi"},
            }
        ),
        description="Requests and limits of each controller; the JVM heap is half the memory limit.",
    )


class KafkaUiSettings(ConfigModel):
    enabled: bool = Field(default=False, description="Deploy Kafka UI (kafbat), read-only, behind a login form.")
    image: ImageSettings = Field(
        default=ImageSettings(repository="ghcr.io/kafbat/kafka-ui", tag="v1.4.2"), description="Kafka UI image (pinned)."
    )
    username: str = Field(
        default="admin", min_length=1, description="Login name of the UI; the password is the kafkaUiPassword secret."
    )
    resources: ResourceSettings = Field(
        default=ResourceSettings.model_validate(
            {
                # Log + /tmp (128Mi: the JVM's and Spring Boot's temporary files).
                "requests": {"cpu": "100m", "memory": "256Mi", "ephemeralStorage": "64Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi", "ephemeralStorage": "256Mi"},
            }
        ),
        description="Requests and limits of the UI pod.",
    )


class KafkaExporterSettings(ConfigModel):
    enabled: bool = Field(default=True, description="Deploy kafka-exporter (topic, partition and consumer-lag metrics on :9308).")
    image: ImageSettings = Field(
        default=ImageSettings(repository="danielqsj/kafka-exporter", tag="v1.9.0"), description="kafka-exporter image (pinned)."
    )
    resources: ResourceSettings = Field(
        default=ResourceSettings.model_validate(
            {
                # Its log only: it writes no file.
                "requests": {"cpu": "50m", "memory": "64Mi", "ephemeralStorage": "32Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi", "ephemeralStorage": "128Mi"},
            }
        ),
        description="Requests and limits of the exporter pod.",
    )


class KafkaSettings(ConfigModel):
    enabled: bool = Field(default=True, description="Deploy Kafka in KRaft mode.")
    replica_count: int = Field(
        default=1, ge=1, description="Brokers (pods <release>-kafka-N). Scaling changes only the broker StatefulSet."
    )
    image: ImageSettings = Field(
        description="Kafka image (images/kafka; apache/kafka is compatible), pinned to the conformance version."
    )
    cluster_id: ClusterId = Field(
        default=None,
        description="Adopt this cluster ID (an existing cluster's volumes). Unset: one is generated once and kept in state.",
    )
    config: KafkaConfigSettings = Field(default=KafkaConfigSettings(), description="server.properties settings.")
    controller: KafkaControllerSettings = Field(default=KafkaControllerSettings(), description="The KRaft controller quorum.")
    persistence: PersistenceSettings = Field(default=PersistenceSettings(size="50Gi"), description="Volume of each broker.")
    resources: ResourceSettings = Field(description="Requests and limits of each broker; the JVM heap is half the memory limit.")
    ui: KafkaUiSettings = Field(default=KafkaUiSettings(), description="Kafka UI.")
    exporter: KafkaExporterSettings = Field(default=KafkaExporterSettings(), description="kafka-exporter.")

    @property
    def controller_count(self) -> int:
        """Voters of the KRaft quorum."""
        return self.controller.replica_count if self.controller.dedicated else 1

    @property
    def quorum_locked(self) -> bool:
        """Whether Pulumi refuses to replace the quorum lock (and so to change the voters)."""
        controller = self.controller
        return controller.dedicated and controller.protect_quorum and not controller.allow_quorum_change

    @property
    def quorum_shape(self) -> str:
        """What the static quorum is made of; changing it rewrites the voters."""
        return f"dedicated:{self.controller.replica_count}" if self.controller.dedicated else "combined:1"

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if self.controller.dedicated:
            found += self.controller.persistence.problems(f"{key}.controller.persistence")
            found += self.controller.resources.problems(f"{key}.controller.resources")
        if self.ui.enabled:
            found += self.ui.image.problems(f"{key}.ui.image", production=production)
            found += self.ui.resources.problems(f"{key}.ui.resources")
        if self.exporter.enabled:
            found += self.exporter.image.problems(f"{key}.exporter.image", production=production)
            found += self.exporter.resources.problems(f"{key}.exporter.resources")
        found += self._replication_problems(key)
        found += self._quorum_problems(key, production=production)
        if production:
            found += self._production_problems(key)
        return found

    def _replication_problems(self, key: str) -> list[Problem]:
        brokers, config = self.replica_count, self.config
        rf, min_isr = config.default_replication_factor, config.min_insync_replicas
        found: list[Problem] = []
        if rf > brokers:
            found.append(
                Problem(
                    f"{key}.config.defaultReplicationFactor",
                    f"default.replication.factor={rf} > brokers={brokers} (kafka.replicaCount): topics could not be "
                    "created. Lower it or add brokers",
                )
            )
        if min_isr > rf:
            found.append(
                Problem(
                    f"{key}.config.minInsyncReplicas",
                    f"min.insync.replicas={min_isr} > default.replication.factor={rf}: every acks=all write would fail. "
                    f"Set it to at most {rf}",
                )
            )
        elif brokers >= 3 and min_isr > rf - 1:
            found.append(
                Problem(
                    f"{key}.config.minInsyncReplicas",
                    f"min.insync.replicas={min_isr} = default.replication.factor={rf} with {brokers} brokers: with one "
                    "broker down, or during any rolling restart, acks=all writes stop. "
                    + (f"Set it to at most {rf - 1}" if rf >= 2 else "Raise kafka.config.defaultReplicationFactor to 3"),
                )
            )
        for field, topic in (
            ("offsetsTopicReplicationFactor", "__consumer_offsets is never created and consumer groups hang"),
            ("transactionStateLogReplicationFactor", "__transaction_state is never created and transactions hang"),
        ):
            value = getattr(config, _snake(field))
            if value > brokers:
                found.append(
                    Problem(
                        f"{key}.config.{field}",
                        f"{_kafka_name(field)}={value} > brokers={brokers}: {topic}. Set it to at most {brokers}",
                    )
                )
        if config.transaction_state_log_min_isr > config.transaction_state_log_replication_factor:
            found.append(
                Problem(
                    f"{key}.config.transactionStateLogMinIsr",
                    f"transaction.state.log.min.isr={config.transaction_state_log_min_isr} > "
                    f"transaction.state.log.replication.factor={config.transaction_state_log_replication_factor}: "
                    "transactional writes would always fail",
                )
            )
        if config.broker_heartbeat_interval_ms * 2 > config.broker_session_timeout_ms:
            found.append(
                Problem(
                    f"{key}.config.brokerHeartbeatIntervalMs",
                    f"broker.heartbeat.interval.ms={config.broker_heartbeat_interval_ms} is more than half of "
                    f"broker.session.timeout.ms={config.broker_session_timeout_ms}: one late heartbeat would fence a "
                    "healthy broker",
                )
            )
        return found

    def _quorum_problems(self, key: str, *, production: bool) -> list[Problem]:
        found: list[Problem] = []
        controllers = self.controller.replica_count
        if controllers not in QUORUM_SIZES:
            found.append(
                Problem(
                    f"{key}.controller.replicaCount",
                    f"{controllers} controllers: use 1, 3 or 5 (a majority must stay alive; an even count tolerates no "
                    "more failures than the odd count below it)",
                )
            )
        if not self.controller.dedicated and self.replica_count != 1:
            found.append(
                Problem(
                    f"{key}.replicaCount",
                    f"{self.replica_count} brokers with a combined (broker+controller) node: scaling a combined "
                    "StatefulSet rewrites the controller quorum and breaks it. Set kafka.controller.dedicated=true "
                    "to run the quorum on its own, or keep kafka.replicaCount=1",
                )
            )
        if production and (not self.controller.dedicated or controllers < 3):
            found.append(
                Problem(
                    f"{key}.controller.replicaCount",
                    "prod needs a dedicated quorum of at least 3 controllers (kafka.controller.dedicated=true, "
                    "kafka.controller.replicaCount=3 or 5) so losing one node keeps a majority",
                )
            )
        return found

    def _production_problems(self, key: str) -> list[Problem]:
        config = self.config
        found: list[Problem] = []
        if self.replica_count < 3:
            found.append(Problem(f"{key}.replicaCount", f"prod needs at least 3 brokers; got {self.replica_count}"))
        if config.default_replication_factor < 3:
            found.append(Problem(f"{key}.config.defaultReplicationFactor", "prod needs a replication factor of at least 3"))
        if config.min_insync_replicas < 2:
            found.append(
                Problem(
                    f"{key}.config.minInsyncReplicas",
                    "prod needs min.insync.replicas of at least 2, or an acknowledged write can live on one disk only",
                )
            )
        for field in ("offsetsTopicReplicationFactor", "transactionStateLogReplicationFactor"):
            if getattr(config, _snake(field)) < 3:
                found.append(Problem(f"{key}.config.{field}", f"prod needs {_kafka_name(field)} of at least 3"))
        if config.transaction_state_log_min_isr < 2:
            found.append(Problem(f"{key}.config.transactionStateLogMinIsr", "prod needs transaction.state.log.min.isr >= 2"))
        if config.unclean_leader_election_enable:
            found.append(
                Problem(
                    f"{key}.config.uncleanLeaderElectionEnable",
                    "must be false in prod: an unclean election makes an out-of-sync replica leader and silently drops "
                    "acknowledged messages",
                )
            )
        if not self.persistence.enabled:
            found.append(Problem(f"{key}.persistence.enabled", "prod brokers need persistent volumes"))
        if self.controller.dedicated and not self.controller.persistence.enabled:
            found.append(Problem(f"{key}.controller.persistence.enabled", "prod controllers need persistent volumes"))
        return found


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _kafka_name(camel: str) -> str:
    return _snake(camel).replace("_", ".")
