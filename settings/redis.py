"""Settings of RedisCluster: a sharded Redis Cluster. Keys follow the guide's
``redisCluster.*`` values."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from settings.base import (
    ConfigModel,
    ImageSettings,
    PersistenceSettings,
    Problem,
    ResourceSettings,
    parse_quantity,
)

# cluster-node-timeout bounds: much below 3 s, CPU throttling and fork pauses cause false
# failovers; above 15 s (Redis' default) an unplanned failover takes longer than ~17 s.
MIN_NODE_TIMEOUT_MS = 3000
MAX_NODE_TIMEOUT_MS = 15000
# Seconds Redis itself may take to stop after SIGTERM (shutdown-timeout in redis.conf).
SHUTDOWN_TIMEOUT_SECONDS = 10

MaxmemoryPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class RedisDrainSettings(ConfigModel):
    """Lowering ``masterCount`` deletes the pods with the highest ordinals, which may be
    masters owning slots. The program cannot see what is deployed from config alone, so
    the user states it: ``fromMasterCount`` is the count being lowered from, and
    ``enabled`` allows the drain. Without ``enabled`` the preflight Job also refuses, at
    deploy time and before the StatefulSet shrinks, to remove any node that owns slots."""

    enabled: bool = Field(
        default=False,
        description="allow this update to move the slots of masters that go away onto the remaining ones "
        "and remove those nodes from the cluster before the StatefulSet shrinks",
    )
    from_master_count: int | None = Field(
        default=None,
        ge=1,
        description="the masterCount currently deployed (the one being lowered from); required with enabled",
    )


class RedisExporterSettings(ConfigModel):
    enabled: bool = Field(default=True, description="run the redis_exporter sidecar (metrics on port 9121)")
    image: ImageSettings = Field(
        default=ImageSettings(repository="ai-infra-redis-exporter", tag="1.62.0"),
        description="redis_exporter image (images/redis-exporter; oliver006/redis_exporter:v1.62.0 is compatible)",
    )
    resources: ResourceSettings = Field(
        default=ResourceSettings.model_validate(
            {
                # Its log only: it writes no file.
                "requests": {"cpu": "10m", "memory": "32Mi", "ephemeralStorage": "32Mi"},
                "limits": {"cpu": "100m", "memory": "64Mi", "ephemeralStorage": "128Mi"},
            }
        ),
        description="resources of the exporter container",
    )


class RedisClusterSettings(ConfigModel):
    enabled: bool = Field(default=True, description="deploy the Redis Cluster")
    master_count: int = Field(default=1, ge=1, description="masters owning slots (1 in dev; at least 3 in prod)")
    replicas_per_master: int = Field(default=0, ge=0, description="replicas of each master (at least 1 in prod)")
    port: int = Field(default=6379, ge=1, le=65535, description="client port of every node (the bus is port + 10000)")
    image: ImageSettings = Field(description="Redis image (Debian based: the scripts need bash)")
    persistence: PersistenceSettings = Field(
        default=PersistenceSettings(size="5Gi"), description="the /data volume (AOF and nodes.conf)"
    )
    resources: ResourceSettings = Field(description="resources of the redis container")
    cluster_node_timeout: int = Field(
        default=5000,
        description="cluster-node-timeout in ms: a master unreachable this long is failed over "
        f"(unplanned failover takes about this + 3 s); {MIN_NODE_TIMEOUT_MS}..{MAX_NODE_TIMEOUT_MS}",
    )
    maxmemory_percent: int = Field(
        default=75,
        ge=10,
        le=90,
        description="maxmemory as a percentage of the container memory limit (room for forks and buffers)",
    )
    maxmemory_policy: MaxmemoryPolicy = Field(
        default="allkeys-lru", description="what Redis evicts at maxmemory (a cache: allkeys-lru)"
    )
    failover_timeout_seconds: int = Field(
        default=20,
        ge=1,
        le=300,
        description="how long the preStop hook waits for a master's replica to take over before the pod stops",
    )
    require_separate_nodes: bool = Field(
        default=False,
        description="required (not preferred) pod anti-affinity on kubernetes.io/hostname: no two Redis pods "
        "share a Kubernetes node, so a node failure never takes a master with its replica; needs at least "
        "masterCount*(1+replicasPerMaster) schedulable nodes",
    )
    drain: RedisDrainSettings = Field(default=RedisDrainSettings(), description="scale-in of masters (see redisCluster.drain.*)")
    exporter: RedisExporterSettings = Field(default=RedisExporterSettings(), description="the metrics sidecar")

    @property
    def node_count(self) -> int:
        return self.master_count * (1 + self.replicas_per_master)

    @property
    def draining(self) -> bool:
        """This update lowers the master count and is allowed to move slots away."""
        previous = self.drain.from_master_count
        return self.drain.enabled and previous is not None and previous > self.master_count

    @property
    def maxmemory_bytes(self) -> int | None:
        limit = self.resources.limits.memory
        if limit is None:
            return None
        return int(parse_quantity(limit) * self.maxmemory_percent / 100)

    @property
    def termination_grace_seconds(self) -> int:
        """Longer than the preStop wait plus Redis' own shutdown-timeout, with room to spare."""
        return self.failover_timeout_seconds + SHUTDOWN_TIMEOUT_SECONDS + 15

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if self.exporter.enabled:
            found += self.exporter.image.problems(f"{key}.exporter.image", production=production)
            found += self.exporter.resources.problems(f"{key}.exporter.resources")
        if self.master_count == 2:
            found.append(
                Problem(
                    f"{key}.masterCount",
                    "a Redis Cluster of 2 masters cannot fail over (a majority of masters must vote); use 1 (dev) or at least 3",
                )
            )
        if not MIN_NODE_TIMEOUT_MS <= self.cluster_node_timeout <= MAX_NODE_TIMEOUT_MS:
            found.append(
                Problem(
                    f"{key}.clusterNodeTimeout",
                    f"{self.cluster_node_timeout} ms is outside {MIN_NODE_TIMEOUT_MS}..{MAX_NODE_TIMEOUT_MS}: shorter causes "
                    "false failovers on CPU throttling and fork pauses, longer makes every failover slower; 5000 is a good value",
                )
            )
        found += self._drain_problems(key)
        if production:
            if self.master_count < 3:
                found.append(
                    Problem(
                        f"{key}.masterCount",
                        f"prod needs at least 3 masters so failover has a voting majority; got {self.master_count}",
                    )
                )
            if self.replicas_per_master < 1:
                found.append(
                    Problem(
                        f"{key}.replicasPerMaster", "prod needs at least 1 replica per master, or a lost master loses its slots"
                    )
                )
        return found

    def _drain_problems(self, key: str) -> list[Problem]:
        previous = self.drain.from_master_count
        if previous is None:
            if self.drain.enabled:
                return [
                    Problem(
                        f"{key}.drain.fromMasterCount",
                        "drain is enabled but does not say which masterCount is deployed now; set "
                        f"{key}.drain.fromMasterCount to it (it must be larger than {key}.masterCount)",
                    )
                ]
            return []
        if previous <= self.master_count:
            return [
                Problem(
                    f"{key}.drain.fromMasterCount",
                    f"is {previous}, not larger than {key}.masterCount ({self.master_count}): nothing is drained when the "
                    f"master count does not go down; remove {key}.drain once a scale-in is done",
                )
            ]
        if not self.drain.enabled:
            return [
                Problem(
                    f"{key}.masterCount",
                    f"lowering the master count from {previous} to {self.master_count} deletes masters that own slots, and "
                    f"their keys with them; set {key}.drain.enabled=true to move their slots to the remaining masters "
                    "before the StatefulSet shrinks",
                )
            ]
        return []
