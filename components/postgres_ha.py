"""PostgresHA: PostgreSQL kept highly available by Patroni, with Kubernetes as the DCS.

Patroni runs in ConfigMaps mode (Endpoints are deprecated): it owns the ConfigMaps
``<scope>-leader``, ``-config``, ``-sync`` and ``-failover`` and labels each pod with its
role. This component registers only what Patroni does not own: its RBAC, the credentials
Secret, ``patroni.yml`` (components/files/patroni/) in a ConfigMap, a headless Service,
a primary and a replica Service that select on the role label, the StatefulSet, with
two or more members a PodDisruptionBudget, and the roll Job.

The StatefulSet's updateStrategy is OnDelete and the roll Job (roll.py, run after every
template change) restarts the members: replicas first, then a switchover, then the old
leader, so a new image or config moves the leader once, not once per member.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pydantic import SecretStr

from components import change_locks
from components import k8s as shapes
from components import kube_objects as kube
from components.credentials import credential
from components.wiring import ClientImage, MetricsEndpoint, Pods, SecretKeyRef
from settings.data_safety import DataSafetySettings
from settings.postgres import PatroniSettings

FILES = Path(__file__).parent / "files" / "patroni"

APP = "patroni"
POSTGRESQL_PORT = 5432
RESTAPI_PORT = 8008
CONFIG_DIR = "/etc/patroni"
CONFIG_FILE = f"{CONFIG_DIR}/patroni.yml"
DATA_MOUNT = "/var/lib/postgresql/data"
DATA_DIR = f"{DATA_MOUNT}/pgroot/data"  # a subdirectory of the volume
SOCKET_DIR = "/var/run/postgresql"  # Debian libpq's default socket directory
BIN_DIR = "/usr/lib/postgresql/15/bin"  # images/patroni/Dockerfile installs PostgreSQL 15

# Patroni's Kubernetes labels (Patroni >= 4 writes "primary" for the leader; set it
# explicitly so the Services and Patroni agree whatever the version's default).
SCOPE_LABEL = "cluster-name"
ROLE_LABEL = "role"
LEADER_LABEL_VALUE = "primary"
FOLLOWER_LABEL_VALUE = "replica"

# Exactly what Patroni needs in ConfigMaps mode: read and label its pods, and keep its
# leader/config/sync/failover ConfigMaps. No Endpoints, no Services, no delete.
ROLE_RULES: list[shapes.Obj] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch", "update"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch", "update"]},
]

# The roll Job's: find the StatefulSet and its pods, evict one (the disruption controller
# decides), nothing else. It talks to Patroni's REST API for /cluster and /switchover.
ROLL_RULES: list[shapes.Obj] = [
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
]
ROLL_APP = "patroni-roll"  # the roll Job's pods' name: never counted as members (PDB, anti-affinity)
ROLL_DEADLINE_SECONDS = 1800  # the Job's activeDeadlineSeconds; roll.py stops a minute earlier
# The provider's await outlasts the Job's deadline, so a stuck roll ends with its own verdict.
ROLL_AWAIT = pulumi.CustomTimeouts(create="32m", update="32m")

PGDATA_CLAIM = "pgdata"  # claims pgdata-<statefulset>-<ordinal>
# On the roll Job's pod template: which StatefulSet template it rolls the members onto.
TEMPLATE_CHECKSUM = "ai-infra-matrix/statefulset-template-checksum"
SECRET_KEYS = ("superuser-password", "replication-password", "rewind-password", "app-password")


class _FileTemplate(string.Template):
    """``@{name}`` placeholders: the files are shell and YAML, full of ``$``."""

    delimiter = "@"


@dataclass(frozen=True)
class PostgresHAArgs:
    release: str
    namespace: str
    settings: PatroniSettings
    cluster_domain: str = "cluster.local"
    # Credentials given with `pulumi config set --secret`; None: generated once.
    superuser_password: SecretStr | None = None
    replication_password: SecretStr | None = None
    storage_class: str = ""  # the platform-wide default when patroni.persistence.storageClass is empty
    image_pull_secrets: list[str] = field(default_factory=list)
    data_safety: DataSafetySettings = field(default_factory=DataSafetySettings)


@dataclass(frozen=True)
class PatroniNames(shapes.StackNames):
    """Every name the component derives from the release."""

    @property
    def scope(self) -> str:
        return f"{self.release}-{APP}"  # pods ai-infra-patroni-0..., `Cluster: ai-infra-patroni`

    @property
    def statefulset(self) -> str:
        return self.scope

    @property
    def service_account(self) -> str:
        return self.scope

    @property
    def primary_service(self) -> str:
        return self.scope

    @property
    def replica_service(self) -> str:
        return f"{self.scope}-replica"

    @property
    def headless_service(self) -> str:
        return f"{self.scope}-headless"

    @property
    def secret(self) -> str:
        return f"{self.scope}-credentials"

    @property
    def files(self) -> str:
        return f"{self.scope}-files"

    @property
    def pdb(self) -> str:
        return f"{self.scope}-pdb"

    @property
    def roll(self) -> str:
        return f"{self.scope}-roll"  # the roll Job, its service account and Role


@dataclass(frozen=True)
class PostgresOutputs:
    """What the rest of the platform may use of the cluster: where to connect, as whom,
    which Secret keys hold the passwords, its pods and its metrics endpoint."""

    names: PatroniNames
    primary_host: str  # always the leader (read-write)
    replica_host: str  # the streaming replicas (read-only); the primary when there is one member
    port: int
    database: str
    app_user: str  # owns the application database
    app_password: SecretKeyRef
    superuser: str
    superuser_password: SecretKeyRef
    client_image: ClientImage  # pg_dump of the server's major version, as the data's owner
    pods: Pods
    roll_pods: Pods  # the roll Job's
    metrics: MetricsEndpoint


class PostgresHA(pulumi.ComponentResource):
    """A Patroni cluster of ``patroni.replicaCount`` PostgreSQL members."""

    statefulset: kube.StatefulSet
    roll_job: kube.Job
    secret: kube.Secret
    files: dict[str, str]
    """The files in the ConfigMap (patroni.yml, post-bootstrap.sh, the scripts), as rendered."""
    outputs: PostgresOutputs
    app_password: pulumi.Output[str]
    """The application user's password (secret), for consumers outside the cluster."""

    def __init__(self, name: str, args: PostgresHAArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:PostgresHA", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        names = PatroniNames(args.release, args.namespace, args.cluster_domain)
        selector = shapes.selector_labels(args.release, APP)
        labels = shapes.common_labels(args.release, APP, "database")
        pod_labels = {**labels, SCOPE_LABEL: names.scope}
        safety = args.data_safety
        self.removal_lock = change_locks.removal_lock("patroni.enabled", safety, parent=self)
        self.volume_claims_lock = change_locks.volume_claims_lock(
            "patroni.persistence", settings.persistence, args.storage_class, safety, parent=self
        )

        identity = shapes.service_account_with_role(
            name, name=names.service_account, namespace=args.namespace, labels=labels, rules=ROLE_RULES, opts=child
        )
        self.service_account, self.role, self.role_binding = identity.account, identity.role, identity.binding

        passwords = {
            "superuser-password": credential(f"{name}-superuser-password", args.superuser_password, parent=self),
            "replication-password": credential(f"{name}-replication-password", args.replication_password, parent=self),
            "rewind-password": credential(f"{name}-rewind-password", None, parent=self),
            "app-password": credential(f"{name}-app-password", None, parent=self),
        }
        # Patroni creates the roles (and the database) at bootstrap only: a new password or
        # role name in the Secret and patroni.yml would reach the members while PostgreSQL
        # still knows only the old ones.
        postgresql = settings.postgresql
        self.credentials_lock = change_locks.credentials_lock(
            ["postgresPassword", "replicationPassword", "patroni.postgresql"],
            [passwords[key] for key in SECRET_KEYS],
            safety,
            parent=self,
            identities={
                "roles": ",".join(
                    [postgresql.username, postgresql.replication_username, postgresql.rewind_username, postgresql.app_username]
                ),
                "database": postgresql.database,
            },
        )
        self.secret = kube.Secret(
            f"{name}-secret",
            metadata=shapes.metadata(names.secret, args.namespace, labels),
            type="Opaque",
            string_data=passwords,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.credentials_lock]),
        )

        self.files = render_files(settings, names, labels=selector)
        self.config_map = kube.ConfigMap(
            f"{name}-files",
            metadata=shapes.metadata(names.files, args.namespace, labels),
            data=self.files,
            opts=child,
        )

        self.headless_service = kube.Service(
            f"{name}-headless-service",
            metadata=shapes.service_metadata(names.headless_service, args.namespace, labels),
            spec={
                "clusterIP": "None",
                # Members find each other before they are ready (a replica cloning its data).
                "publishNotReadyAddresses": True,
                "selector": {**selector, SCOPE_LABEL: names.scope},
                "ports": _ports(include_restapi=True),
            },
            opts=child,
        )
        self.primary_service = kube.Service(
            f"{name}-primary-service",
            metadata=shapes.service_metadata(names.primary_service, args.namespace, labels, _ROLE_SERVICE_IGNORES),
            spec={
                "type": "ClusterIP",
                "selector": {**selector, SCOPE_LABEL: names.scope, ROLE_LABEL: LEADER_LABEL_VALUE},
                "ports": _ports(include_restapi=False),
            },
            opts=child,
        )
        self.replica_service = kube.Service(
            f"{name}-replica-service",
            metadata=shapes.service_metadata(names.replica_service, args.namespace, labels, _ROLE_SERVICE_IGNORES),
            spec={
                "type": "ClusterIP",
                "selector": {**selector, SCOPE_LABEL: names.scope, ROLE_LABEL: FOLLOWER_LABEL_VALUE},
                "ports": _ports(include_restapi=False),
            },
            opts=child,
        )

        credentials_checksum = pulumi.Output.all(*(passwords[key] for key in SECRET_KEYS)).apply(
            lambda values: shapes.checksum(*values)
        )
        statefulset_spec = _statefulset_spec(
            args, names, selector, pod_labels, self.files, credentials_checksum=credentials_checksum
        )
        self.statefulset = kube.StatefulSet(
            f"{name}-statefulset",
            metadata=shapes.metadata(
                names.statefulset,
                args.namespace,
                labels,
                _checkov_skips(settings) | change_locks.statefulset_annotations(safety),
            ),
            spec=statefulset_spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.role_binding, self.config_map, self.secret, self.removal_lock, self.volume_claims_lock],
            ),
        )
        self.roll_job = self._roll_job(name, args, names, template_checksum=_template_checksum(statefulset_spec))
        self.grown_claims = change_locks.grown_claims(
            name,
            claim=PGDATA_CLAIM,
            statefulset=names.statefulset,
            namespace=args.namespace,
            replicas=settings.replica_count,
            persistence=settings.persistence,
            safety=safety,
            after=self.statefulset,
            parent=self,
        )

        self.pdb = None
        if settings.replica_count >= 2:
            self.pdb = shapes.pod_disruption_budget(
                f"{name}-pdb",
                name=names.pdb,
                namespace=args.namespace,
                labels=labels,
                selector=selector,
                max_unavailable=1,
                opts=child,
            )

        primary_host = names.host(names.primary_service)
        secret_name = self.secret.metadata["name"]
        self.app_password = pulumi.Output.secret(passwords["app-password"])
        self.outputs = PostgresOutputs(
            names=names,
            primary_host=primary_host,
            # One member: reads go to the primary, the only server.
            replica_host=primary_host if settings.replica_count == 1 else names.host(names.replica_service),
            port=POSTGRESQL_PORT,
            database=settings.postgresql.database,
            app_user=settings.postgresql.app_username,
            app_password=SecretKeyRef(secret_name, "app-password"),
            superuser=settings.postgresql.username,
            superuser_password=SecretKeyRef(secret_name, "superuser-password"),
            client_image=ClientImage(settings.image.reference, settings.image.pull_policy, settings.run_as_user),
            pods=Pods(APP, selector),
            roll_pods=Pods(ROLL_APP, shapes.selector_labels(args.release, ROLL_APP)),
            # The headless Service: every member, ready or not, is a target.
            metrics=MetricsEndpoint("patroni", names.headless_service, selector, "patroni", RESTAPI_PORT),
        )
        self.register_outputs({"primaryHost": primary_host, "replicaHost": self.outputs.replica_host})

    def _roll_job(
        self, name: str, args: PostgresHAArgs, names: PatroniNames, *, template_checksum: pulumi.Output[str]
    ) -> kube.Job:
        """The roll Job, its service account and Role. It runs after the StatefulSet has
        taken a new template (with OnDelete the provider's await returns as soon as the
        members are Ready) and `pulumi up` waits for it: the update ends rolled. The
        template's checksum is in the Job's own template, so every template change replaces
        (and so runs) it, and nothing else does."""
        labels = shapes.common_labels(args.release, ROLL_APP, "rolling-restart")
        child = pulumi.ResourceOptions(parent=self)
        identity = shapes.service_account_with_role(
            f"{name}-roll", name=names.roll, namespace=args.namespace, labels=labels, rules=ROLL_RULES, opts=child
        )
        return kube.Job(
            f"{name}-roll",
            metadata=shapes.metadata(
                names.roll, args.namespace, labels, shapes.REPLACE_UNREADY_JOB | _checkov_skips(args.settings)
            ),
            spec=_roll_job_spec(args, names, labels, template_checksum),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.statefulset, self.config_map, identity.binding, identity.account, identity.role],
                custom_timeouts=ROLL_AWAIT,
            ),
        )


def render_files(settings: PatroniSettings, names: PatroniNames, *, labels: dict[str, str]) -> dict[str, str]:
    """patroni.yml, post-bootstrap.sh, the on_role_change callback and the roll Job's script
    (with kube_api.py, which both import) for ``settings``: the ConfigMap's data."""
    postgresql = settings.postgresql
    synchronous_mode = {"off": "false", "on": "true", "quorum": "quorum"}[settings.synchronous_mode]
    values = {
        "scope": names.scope,
        "labels": json.dumps(labels, sort_keys=True),
        "scope_label": SCOPE_LABEL,
        "role_label": ROLE_LABEL,
        "leader_label_value": LEADER_LABEL_VALUE,
        "follower_label_value": FOLLOWER_LABEL_VALUE,
        "restapi_port": str(RESTAPI_PORT),
        "postgresql_port": str(POSTGRESQL_PORT),
        "ttl": str(settings.ttl),
        "loop_wait": str(settings.loop_wait),
        "retry_timeout": str(settings.retry_timeout),
        "maximum_lag_on_failover": str(settings.maximum_lag_on_failover),
        "primary_start_timeout": str(settings.primary_start_timeout),
        "failsafe_mode": _yaml_bool(settings.failsafe_mode),
        "synchronous_mode": synchronous_mode,
        "synchronous_mode_strict": _yaml_bool(settings.synchronous_mode_strict),
        "synchronous_node_count": str(settings.synchronous_node_count),
        # JSON is YAML: flow mappings and lists with every string quoted.
        "parameters": json.dumps(dict(sorted(postgresql.parameters.items()))),
        "pg_hba": json.dumps(list(postgresql.pg_hba)),
        "config_dir": CONFIG_DIR,
        "statefulset": names.statefulset,
        "deadline_seconds": str(ROLL_DEADLINE_SECONDS - 60),
        "data_dir": DATA_DIR,
        "bin_dir": BIN_DIR,
        "socket_dir": SOCKET_DIR,
        "superuser": postgresql.username,
        "replication_user": postgresql.replication_username,
        "rewind_user": postgresql.rewind_username,
        "app_user": postgresql.app_username,
        "database": postgresql.database,
    }
    return {
        name: _FileTemplate((FILES / name).read_text()).substitute(values)
        for name in ("patroni.yml", "post-bootstrap.sh", "kube_api.py", "on-role-change.py", "roll.py")
    }


# --- private builders ----------------------------------------------------------------


def _yaml_bool(value: bool) -> str:
    return "true" if value else "false"


def _ports(*, include_restapi: bool) -> list[shapes.Obj]:
    ports = [{"name": "postgresql", "port": POSTGRESQL_PORT, "targetPort": "postgresql", "protocol": "TCP"}]
    if include_restapi:
        ports.append({"name": "patroni", "port": RESTAPI_PORT, "targetPort": "patroni", "protocol": "TCP"})
    return ports


def _statefulset_spec(
    args: PostgresHAArgs,
    names: PatroniNames,
    selector: dict[str, str],
    pod_labels: dict[str, str],
    files: dict[str, str],
    *,
    credentials_checksum: pulumi.Output[str],
) -> shapes.Obj:
    settings = args.settings
    spec: shapes.Obj = {
        "replicas": settings.replica_count,
        "serviceName": names.headless_service,
        # Members start together: with OrderedReady a replica that cannot become ready
        # without a leader would hold back the member that holds the most recent data.
        "podManagementPolicy": "Parallel",
        # Pods go only when the roll Job evicts them, the leader last (see the module docstring).
        "updateStrategy": {"type": "OnDelete"},
        "selector": {"matchLabels": selector},  # never the role label: Patroni changes it
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {
                    shapes.CONFIG_CHECKSUM: shapes.checksum(*(files[key] for key in sorted(files))),
                    # A planned rotation (README: "Data safety") rolls the members onto the new values.
                    shapes.CREDENTIALS_CHECKSUM: credentials_checksum,
                },
            },
            "spec": _pod_spec(args, names, selector),
        },
    }
    return spec | shapes.volume_claim_templates(PGDATA_CLAIM, settings.persistence, args.storage_class, selector)


def _template_checksum(statefulset_spec: shapes.Obj) -> pulumi.Output[str]:
    """A checksum of the StatefulSet's pod template as given (image, config and credentials
    checksums, resources: everything a new revision is made of). From the inputs, not the
    applied object, so a preview knows it and shows the Job unchanged when it is."""
    template = pulumi.Output.from_input(statefulset_spec["template"])
    return template.apply(lambda resolved: shapes.checksum(json.dumps(resolved, sort_keys=True)))


def _roll_job_spec(
    args: PostgresHAArgs, names: PatroniNames, labels: dict[str, str], template_checksum: pulumi.Output[str]
) -> shapes.Obj:
    settings = args.settings
    return shapes.script_job_spec(
        container="roll",
        image=settings.image,  # the Patroni image: it has Python
        command=["python3", f"{CONFIG_DIR}/roll.py"],
        labels=labels,
        run_as_user=settings.run_as_user,
        config_volume=_files_volume(names),
        config_dir=CONFIG_DIR,
        resources={
            "requests": {"cpu": "20m", "memory": "32Mi", "ephemeral-storage": "16Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
        },
        backoff_limit=3,
        deadline_seconds=ROLL_DEADLINE_SECONDS,
        image_pull_secret_names=args.image_pull_secrets,
        service_account=names.roll,  # roll.py reads the StatefulSet and evicts pods
        template_annotations={TEMPLATE_CHECKSUM: template_checksum},
    )


def _files_volume(names: PatroniNames) -> shapes.Obj:
    return {"name": "patroni-files", "configMap": {"name": names.files, "defaultMode": 0o555}}


# Why kube-score's service-targets-pod does not apply to the primary and replica Services.
_ROLE_SERVICE_IGNORES = shapes.kube_score_ignores(
    {
        "service-targets-pod": (
            f"the Service selects on the {ROLE_LABEL!r} label Patroni puts on the leader and the replicas at run time "
            "(Kubernetes as DCS); no pod template carries it, so that only the members in that role receive traffic"
        )
    }
)


def _checkov_skips(settings: PatroniSettings) -> dict[str, str]:
    reasons = {
        **shapes.PINNED_IMAGE_SKIPS,
        "CKV_K8S_35": (
            "Patroni takes the superuser, replication and rewind passwords from PATRONI_* environment variables "
            "or patroni.yml only; env from the Secret keeps them out of the ConfigMap and the pod spec"
        ),
        "CKV_K8S_38": (
            "Patroni uses the Kubernetes API as its DCS (leader lock and member state in ConfigMaps, role labels "
            "on pods); the token is bound to a Role limited to pods and configmaps in this namespace"
        ),
    }
    if settings.run_as_user < 10000:
        reasons["CKV_K8S_40"] = (
            f"runs as uid {settings.run_as_user}, the postgres user images/patroni/Dockerfile creates and owns "
            "PGDATA with (patroni.runAsUser must match the image); a higher uid needs a rebuilt image"
        )
    return shapes.scan_exceptions(reasons)


def _pod_spec(args: PostgresHAArgs, names: PatroniNames, selector: dict[str, str]) -> shapes.Obj:
    settings = args.settings
    uid = settings.run_as_user
    volumes: list[shapes.Obj] = [
        _files_volume(names),
        # patronictl's and psql's scratch files and the pgpass Patroni writes.
        shapes.scratch_volume("tmp", "64Mi"),
        # The server's Unix socket and its lock file.
        shapes.scratch_volume("socket", "1Mi"),
        # PostgreSQL's dynamic shared memory; a container's default /dev/shm is 64 MiB.
        shapes.scratch_volume("dshm", "256Mi", memory=True),
        *shapes.data_volume("pgdata", settings.persistence),
    ]
    container: shapes.Obj = {
        "name": APP,
        "image": settings.image.reference,
        "imagePullPolicy": settings.image.pull_policy,
        "command": ["patroni", CONFIG_FILE],
        "ports": [
            {"name": "postgresql", "containerPort": POSTGRESQL_PORT, "protocol": "TCP"},
            # Patroni's REST API: probes, /cluster, and the Prometheus metrics on /metrics.
            {"name": "patroni", "containerPort": RESTAPI_PORT, "protocol": "TCP"},
        ],
        "env": _env(args, names),
        "resources": shapes.container_resources(settings.resources, scratch=shapes.unclaimed_size(settings.persistence)),
        "readinessProbe": shapes.http_probe("/readiness", "patroni", initial_delay=5, period=10, timeout=5, failures=3),
        # /liveness fails once the HA loop has stalled longer than ttl; restart after about ttl more.
        "livenessProbe": shapes.http_probe(
            "/liveness", "patroni", initial_delay=30, period=10, timeout=5, failures=_liveness_failures(settings.ttl)
        ),
        "securityContext": shapes.container_security_context(read_only_root=True),
        "volumeMounts": [
            {"name": "pgdata", "mountPath": DATA_MOUNT},
            {"name": "patroni-files", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "socket", "mountPath": SOCKET_DIR},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
        # No preStop hook: Patroni handles SIGTERM itself, stopping PostgreSQL and handing
        # the leader lock over; a `pg_ctl stop` behind its back would trigger a restart.
    }
    pod: shapes.Obj = {
        "serviceAccountName": names.service_account,
        "automountServiceAccountToken": True,  # Patroni talks to the Kubernetes API
        # Service links would put *_PORT env into the container; Patroni reads PATRONI_* env.
        "enableServiceLinks": False,
        "securityContext": shapes.pod_security_context(run_as_user=uid, fs_group=uid),
        "terminationGracePeriodSeconds": settings.termination_grace_period_seconds,
        "containers": [container],
        "volumes": volumes,
        **shapes.spread(selector, require_separate_nodes=settings.require_separate_nodes),
        **shapes.image_pull_secrets(args.image_pull_secrets),
    }
    return pod


def _liveness_failures(ttl: int, period: int = 10) -> int:
    return max(1, -(-ttl // period))


def _env(args: PostgresHAArgs, names: PatroniNames) -> list[shapes.Obj]:
    """Per-pod values and passwords only; everything else is in patroni.yml. Order
    matters: a ``$(VAR)`` reference needs VAR defined earlier in the list."""
    secret = names.secret
    return [
        shapes.env_from_field("PATRONI_KUBERNETES_POD_IP", "status.podIP"),
        shapes.env_from_field("PATRONI_NAME", "metadata.name"),
        shapes.env_from_field("PATRONI_KUBERNETES_NAMESPACE", "metadata.namespace"),
        shapes.env_value("PATRONI_POSTGRESQL_CONNECT_ADDRESS", f"$(PATRONI_KUBERNETES_POD_IP):{POSTGRESQL_PORT}"),
        shapes.env_value("PATRONI_RESTAPI_CONNECT_ADDRESS", f"$(PATRONI_KUBERNETES_POD_IP):{RESTAPI_PORT}"),
        shapes.env_from_secret("PATRONI_SUPERUSER_PASSWORD", secret, "superuser-password"),
        shapes.env_from_secret("PATRONI_REPLICATION_PASSWORD", secret, "replication-password"),
        shapes.env_from_secret("PATRONI_REWIND_PASSWORD", secret, "rewind-password"),
        # Read by post-bootstrap.sh, on the first member only; not a PATRONI_* name, so
        # Patroni does not take it for one of its settings.
        shapes.env_from_secret("AI_INFRA_APP_PASSWORD", secret, "app-password"),
        # `kubectl exec ai-infra-patroni-0 -- patronictl list` as the guide writes it.
        shapes.env_value("PATRONICTL_CONFIG_FILE", CONFIG_FILE),
    ]
