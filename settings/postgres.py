"""Settings of PostgresHA: Patroni-managed PostgreSQL, Kubernetes as the DCS.
Keys follow the guide's ``patroni.*`` values."""

from __future__ import annotations

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, PersistenceSettings, Problem, ResourceSettings


class PostgresqlSettings(ConfigModel):
    database: str = Field(default="ai_infra_db", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    username: str = Field(default="postgres", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class PatroniSettings(ConfigModel):
    enabled: bool = True
    replica_count: int = Field(default=1, ge=1)
    image: ImageSettings
    postgresql: PostgresqlSettings = PostgresqlSettings()
    persistence: PersistenceSettings = PersistenceSettings(size="20Gi")
    resources: ResourceSettings

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if production and self.enabled and self.replica_count < 2:
            found.append(
                Problem(
                    f"{key}.replicaCount",
                    f"prod needs at least 2 Patroni members for failover (3 recommended); got {self.replica_count}",
                )
            )
        if production and self.enabled and not self.persistence.enabled:
            found.append(Problem(f"{key}.persistence.enabled", "prod keeps database files on persistent volumes; set it to true"))
        return found
