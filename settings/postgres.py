"""Settings of PostgresHA: Patroni-managed PostgreSQL, Kubernetes as the DCS.
Keys follow the guide's ``patroni.*`` values."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, PersistenceSettings, Problem, ResourceSettings

_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"

# Patroni's own floors (docs/dynamic_configuration.rst): below these it raises them itself.
MIN_TTL = 20
MIN_RETRY_TIMEOUT = 3

ParameterValue = str | int | float | bool


class PostgresqlSettings(ConfigModel):
    database: str = Field(
        default="ai_infra_db",
        pattern=_IDENTIFIER,
        description="application database, created at bootstrap and owned by the application user",
    )
    username: str = Field(
        default="postgres",
        pattern=_IDENTIFIER,
        description="PostgreSQL superuser Patroni manages (its password: the postgresPassword secret)",
    )
    app_username: str = Field(
        default="ai_infra_db",
        pattern=_IDENTIFIER,
        description="application user the backend connects as (DB_USER), created at bootstrap; owns the database",
    )
    replication_username: str = Field(
        default="replicator",
        pattern=_IDENTIFIER,
        description="user replicas stream WAL as (its password: the replicationPassword secret)",
    )
    rewind_username: str = Field(
        default="rewind_user",
        pattern=_IDENTIFIER,
        description="user pg_rewind connects as to resynchronise a former primary (password generated)",
    )
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict,
        description=(
            "postgresql.conf parameters, in bootstrap.dcs of patroni.yml: applied when the cluster is created; "
            "change a running cluster with `patronictl edit-config`"
        ),
    )
    pg_hba: list[str] = Field(
        default_factory=list,
        description="pg_hba.conf lines, in order (scram-sha-256 passwords; `local all all peer` serves kubectl exec)",
    )


class PatroniSettings(ConfigModel):
    enabled: bool = Field(default=True, description="deploy the Patroni PostgreSQL cluster")
    replica_count: int = Field(
        default=1,
        ge=1,
        description="Patroni members (PostgreSQL servers); at least 2 in prod; the guide scales to 5",
    )
    image: ImageSettings = Field(description="image with PostgreSQL 15 and Patroni (build images/patroni/Dockerfile)")
    postgresql: PostgresqlSettings = Field(default=PostgresqlSettings(), description="database, users and server settings")
    persistence: PersistenceSettings = Field(
        default=PersistenceSettings(size="20Gi"), description="one volume per member for the data directory"
    )
    resources: ResourceSettings = Field(description="requests and limits of the Patroni container")
    synchronous_mode: Literal["off", "on", "quorum"] = Field(
        default="off",
        description=(
            "Patroni synchronous replication: on (each commit waits for a synchronous standby, failover only to it, "
            "so acknowledged commits survive), quorum (quorum commit), off (asynchronous); on needs replicaCount >= 2"
        ),
    )
    synchronous_mode_strict: bool = Field(
        default=False,
        description="refuse writes when no synchronous standby is left (false: losing the replicas keeps writes going)",
    )
    synchronous_node_count: int = Field(
        default=1, ge=1, description="synchronous standbys each commit waits for (at most replicaCount - 1)"
    )
    require_separate_nodes: bool = Field(
        default=False,
        description="required (not preferred) pod anti-affinity on kubernetes.io/hostname: no two members share a "
        "Kubernetes node, so a node failure takes at most one; needs at least replicaCount schedulable nodes",
    )
    ttl: int = Field(
        default=20,
        ge=1,
        description="leader lock TTL in seconds (how long a dead primary keeps the lock); loopWait + 2*retryTimeout <= ttl",
    )
    loop_wait: int = Field(default=5, ge=1, description="seconds between Patroni HA loop runs")
    retry_timeout: int = Field(
        default=5, ge=1, description="seconds Patroni retries the Kubernetes API and PostgreSQL before demoting (>= 3)"
    )
    failsafe_mode: bool = Field(
        default=True,
        description="keep the primary running through a Kubernetes API outage while every member still answers it",
    )
    maximum_lag_on_failover: int = Field(
        default=1048576, ge=0, description="bytes a replica may lag and still be promoted (asynchronous mode)"
    )
    primary_start_timeout: int = Field(
        default=300, ge=0, description="seconds a crashed primary may take to restart before a failover"
    )
    termination_grace_period_seconds: int = Field(
        default=300,
        ge=60,
        description="pod grace period (>= 60): Patroni stops PostgreSQL cleanly and hands the leader lock over within it",
    )
    run_as_user: int = Field(
        default=999, ge=1, description="UID (and GID, fsGroup) of the image's postgres user; must match the image"
    )

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.persistence.problems(f"{key}.persistence"),
            *self.resources.problems(f"{key}.resources"),
        ]
        if production and self.replica_count < 2:
            found.append(
                Problem(
                    f"{key}.replicaCount",
                    f"prod needs at least 2 Patroni members for failover (3 recommended); got {self.replica_count}",
                )
            )
        if production and not self.persistence.enabled:
            found.append(Problem(f"{key}.persistence.enabled", "prod keeps database files on persistent volumes; set it to true"))
        if self.synchronous_mode != "off" and self.replica_count < 2:
            found.append(
                Problem(
                    f"{key}.synchronousMode",
                    f"synchronous replication needs at least 2 members (got replicaCount {self.replica_count}); "
                    f"set {key}.synchronousMode to off or raise {key}.replicaCount",
                )
            )
        elif self.synchronous_mode != "off" and self.synchronous_node_count > self.replica_count - 1:
            found.append(
                Problem(
                    f"{key}.synchronousNodeCount",
                    f"{self.synchronous_node_count} synchronous standbys need at least {self.synchronous_node_count + 1} "
                    f"members (got {self.replica_count}); lower it or raise {key}.replicaCount",
                )
            )
        if not self.postgresql.pg_hba:
            found.append(Problem(f"{key}.postgresql.pgHba", "no pg_hba lines: nobody could connect; give at least one"))
        users = [self.postgresql.username, self.postgresql.app_username, self.postgresql.replication_username]
        users.append(self.postgresql.rewind_username)
        if len(set(users)) != len(users):
            found.append(
                Problem(
                    f"{key}.postgresql",
                    f"username, appUsername, replicationUsername and rewindUsername must differ; got {users}",
                )
            )
        if self.ttl < MIN_TTL:
            found.append(Problem(f"{key}.ttl", f"Patroni's minimum ttl is {MIN_TTL} seconds; got {self.ttl}"))
        if self.retry_timeout < MIN_RETRY_TIMEOUT:
            found.append(
                Problem(
                    f"{key}.retryTimeout",
                    f"Patroni's minimum retryTimeout is {MIN_RETRY_TIMEOUT} seconds; got {self.retry_timeout}",
                )
            )
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            found.append(
                Problem(
                    f"{key}.ttl",
                    f"loopWait + 2*retryTimeout must be <= ttl so the leader renews its lock before it expires; got "
                    f"{self.loop_wait} + 2*{self.retry_timeout} > {self.ttl}; raise {key}.ttl to at least "
                    f"{self.loop_wait + 2 * self.retry_timeout} or lower {key}.loopWait / {key}.retryTimeout",
                )
            )
        return found
