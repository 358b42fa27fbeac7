"""Settings of RedisCluster: a sharded Redis Cluster. Keys follow the guide's
``redisCluster.*`` values."""

from __future__ import annotations

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, PersistenceSettings, Problem, ResourceSettings


class RedisClusterSettings(ConfigModel):
    enabled: bool = True
    master_count: int = Field(default=1, ge=1)
    replicas_per_master: int = Field(default=0, ge=0)
    port: int = Field(default=6379, ge=1, le=65535)
    image: ImageSettings
    persistence: PersistenceSettings = PersistenceSettings(size="5Gi")
    resources: ResourceSettings

    @property
    def node_count(self) -> int:
        return self.master_count * (1 + self.replicas_per_master)

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if self.master_count == 2:
            found.append(
                Problem(
                    f"{key}.masterCount",
                    "a Redis Cluster of 2 masters cannot fail over (a majority of masters must vote); use 1 (dev) or at least 3",
                )
            )
        if production and self.enabled:
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
