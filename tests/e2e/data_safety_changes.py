"""A representative change of every config key of the prod stack, for
tests/e2e/test_data_safety.py: the key's prod default turned into another valid value, with
the companion keys a change needs to be valid or to take effect (backup.s3.* only matter
with the s3 destination), and what the engine must answer: a plan that keeps every
StatefulSet, claim, credentials Secret and the Namespace, or a refusal by a named lock.

Everything here is pure: ``changes()`` is checked offline against the settings
(tests/unit/test_data_safety_changes.py) before the engine sees it."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settings import SECRET_KEYS, load_settings
from tools.config_reference import config_rows

STACK = "prod"


@dataclass(frozen=True)
class Change:
    """``values``: dotted key -> value, as `pulumi config set --path` takes them (the key
    itself first, then its companions); ``refused_by``: the text the engine's refusal must
    contain (the lock's name, which names the key), or "" when the change must plan safely;
    ``alone``: previewed on its own (a refusal, or a change that removes objects and so
    could hide another change's plan in a batch)."""

    key: str
    values: dict[str, Any]
    refused_by: str = ""
    alone: bool = False
    secret: bool = False

    @property
    def section(self) -> str:
        return self.key.split(".")[0]


def _lock(guarded: str, override: str) -> str:
    return f"{guarded}-change-refused-unless-{override}"


VOLUMES = "dataSafety.allowVolumeClaimChange"
REMOVAL = "dataSafety.allowRemoval"
CREDENTIALS = "dataSafety.allowCredentialChange"
POSTGRES_IDENTITY = "postgresPassword+replicationPassword+patroni.postgresql"

# The changes a lock refuses, by key: the lock whose name the refusal carries.
REFUSED: dict[str, str] = {
    "profile": _lock("kafka.controller+clusterDomain", "kafka.controller.allowQuorumChange"),
    "releaseName": _lock("namespace+releaseName", REMOVAL),
    "clusterDomain": _lock("kafka.controller+clusterDomain", "kafka.controller.allowQuorumChange"),
    "namespace": _lock("namespace+releaseName", REMOVAL),
    "storageClass": "+storageClass-change-refused-unless-" + VOLUMES,
    "patroni.enabled": _lock("patroni.enabled", REMOVAL),
    "patroni.persistence.size": _lock("patroni.persistence+storageClass", VOLUMES),
    "patroni.persistence.storageClass": _lock("patroni.persistence+storageClass", VOLUMES),
    "redisCluster.enabled": _lock("redisCluster.enabled", REMOVAL),
    "redisCluster.persistence.enabled": _lock("redisCluster.persistence+storageClass", VOLUMES),
    "redisCluster.persistence.size": _lock("redisCluster.persistence+storageClass", VOLUMES),
    "redisCluster.persistence.storageClass": _lock("redisCluster.persistence+storageClass", VOLUMES),
    "kafka.enabled": _lock("kafka.enabled", REMOVAL),
    "kafka.controller.replicaCount": _lock("kafka.controller+clusterDomain", "kafka.controller.allowQuorumChange"),
    "kafka.controller.persistence.enabled": _lock("kafka.controller.persistence+storageClass", VOLUMES),
    "kafka.controller.persistence.size": _lock("kafka.controller.persistence+storageClass", VOLUMES),
    "kafka.controller.persistence.storageClass": _lock("kafka.controller.persistence+storageClass", VOLUMES),
    "kafka.persistence.enabled": _lock("kafka.persistence+storageClass", VOLUMES),
    "kafka.persistence.size": _lock("kafka.persistence+storageClass", VOLUMES),
    "kafka.persistence.storageClass": _lock("kafka.persistence+storageClass", VOLUMES),
    "backup.storageClass": _lock("backup.storageClass+storageClass", VOLUMES),
    "patroni.postgresql.database": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "patroni.postgresql.username": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "patroni.postgresql.appUsername": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "patroni.postgresql.replicationUsername": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "patroni.postgresql.rewindUsername": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "postgresPassword": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "replicationPassword": _lock(POSTGRES_IDENTITY, CREDENTIALS),
    "redisPassword": _lock("redisPassword", CREDENTIALS),
    # The override keys lift a protection: on their own they change nothing a lock guards.
}

# Keys a render-mode stack cannot change: they say how the program reaches a cluster, and
# in render mode (AI_INFRA_RENDER_DIR, set by the test) the program replaces the whole
# kubernetes block, so they change nothing. A kubeconfig or context that names another
# cluster replaces the provider, and with it every object: only a real-cluster test can
# show what the engine then plans.
NOT_IN_RENDER_MODE: tuple[str, ...] = (
    "kubernetes.kubeconfig",
    "kubernetes.context",
    "kubernetes.renderYamlToDirectory",  # the test itself sets it
)

# The representative new value of keys a generic rule cannot pick, with companions.
_S3 = {"backup.destination": "s3", "backup.s3.bucket": "backups", "backup.s3.credentialsSecret": "backup-s3"}
SPECIFIC: dict[str, dict[str, Any]] = {
    "profile": {"profile": "dev"},
    "podSecurityLevel": {"podSecurityLevel": "baseline"},
    "clusterDomain": {"clusterDomain": "cluster.example"},
    "imageRegistry": {"imageRegistry": "registry.example.com:5000/ai-infra"},
    "imagePullSecrets": {"imagePullSecrets[0]": "registry-pull"},
    "patroni.replicaCount": {"patroni.replicaCount": 5},
    "patroni.postgresql.database": {"patroni.postgresql.database": "ai_infra_db2"},
    "patroni.postgresql.username": {"patroni.postgresql.username": "postgres2"},
    "patroni.postgresql.appUsername": {"patroni.postgresql.appUsername": "ai_infra_app"},
    "patroni.postgresql.replicationUsername": {"patroni.postgresql.replicationUsername": "replicator2"},
    "patroni.postgresql.rewindUsername": {"patroni.postgresql.rewindUsername": "rewind_user2"},
    "patroni.image.pullPolicy": {"patroni.image.pullPolicy": "Always"},
    "patroni.postgresql.parameters": {"patroni.postgresql.parameters.max_connections": 300},
    "patroni.postgresql.pgHba": {"patroni.postgresql.pgHba[0]": "local all all peer"},
    "patroni.persistence.enabled": {"patroni.persistence.enabled": False},
    "patroni.synchronousMode": {"patroni.synchronousMode": "quorum"},
    "patroni.synchronousNodeCount": {"patroni.synchronousNodeCount": 2},
    "patroni.loopWait": {"patroni.loopWait": 4},
    "patroni.retryTimeout": {"patroni.retryTimeout": 4},
    "patroni.runAsUser": {"patroni.runAsUser": 1001},
    "redisCluster.masterCount": {"redisCluster.masterCount": 4},
    "redisCluster.replicasPerMaster": {"redisCluster.replicasPerMaster": 2},
    "redisCluster.port": {"redisCluster.port": 6380},
    "redisCluster.maxmemoryPolicy": {"redisCluster.maxmemoryPolicy": "volatile-lru"},
    "redisCluster.drain.enabled": {"redisCluster.drain.enabled": True, "redisCluster.drain.fromMasterCount": 4},
    "redisCluster.drain.fromMasterCount": {"redisCluster.drain.enabled": True, "redisCluster.drain.fromMasterCount": 4},
    "kafka.replicaCount": {"kafka.replicaCount": 5},
    "kafka.clusterId": {"kafka.clusterId": "MkU3OEVBNTcwNTJENDM2Qg"},
    # Replication up by one, on five brokers (prod's rules: RF <= brokers, minISR < RF, floors of 3 and 2).
    "kafka.config.defaultReplicationFactor": {"kafka.replicaCount": 5, "kafka.config.defaultReplicationFactor": 4},
    "kafka.config.minInsyncReplicas": {
        "kafka.replicaCount": 5,
        "kafka.config.defaultReplicationFactor": 4,
        "kafka.config.minInsyncReplicas": 3,
    },
    "kafka.config.offsetsTopicReplicationFactor": {"kafka.replicaCount": 5, "kafka.config.offsetsTopicReplicationFactor": 4},
    "kafka.config.transactionStateLogReplicationFactor": {
        "kafka.replicaCount": 5,
        "kafka.config.transactionStateLogReplicationFactor": 4,
    },
    "kafka.config.transactionStateLogMinIsr": {
        "kafka.replicaCount": 5,
        "kafka.config.transactionStateLogReplicationFactor": 4,
        "kafka.config.transactionStateLogMinIsr": 3,
    },
    "kafka.controller.replicaCount": {"kafka.controller.replicaCount": 5},
    "kafka.controller.protectQuorum": {"kafka.controller.protectQuorum": False},
    "kafka.ui.username": {"kafka.ui.username": "viewer"},
    "monitoring.namespace": {"monitoring.namespace": "observability"},
    "monitoring.selectorLabels": {"monitoring.selectorLabels.release": "kube-prometheus"},
    "monitoring.alerts.labels": {"monitoring.alerts.labels.team": "platform"},
    "monitoring.dashboards.annotations": {"monitoring.dashboards.annotations.folder": "ai-infra"},
    "monitoring.dashboards.namespace": {"monitoring.dashboards.namespace": "grafana"},
    "monitoring.scrapeInterval": {"monitoring.scrapeInterval": "15s"},
    "monitoring.scrapeTimeout": {"monitoring.scrapeTimeout": "5s"},
    "monitoring.alerts.patroniReplicationLagBytes": {"monitoring.alerts.patroniReplicationLagBytes": 33554432},
    "monitoring.alerts.hpaAtMaxFor": {"monitoring.alerts.hpaAtMaxFor": "30m"},
    "backup.destination": dict(_S3),
    "backup.timeZone": {"backup.timeZone": "Asia/Shanghai"},
    "backup.postgres.schedule": {"backup.postgres.schedule": "30 3 * * *"},
    "backup.redis.schedule": {"backup.redis.schedule": "45 3 * * *"},
    "backup.postgres.source": {"backup.postgres.source": "primary"},
    "backup.s3.endpoint": {**_S3, "backup.s3.endpoint": "https://minio.example:9000"},
    "backup.s3.bucket": {**_S3, "backup.s3.bucket": "other-backups"},
    "backup.s3.prefix": {**_S3, "backup.s3.prefix": "ai-infra"},
    "backup.s3.region": {**_S3, "backup.s3.region": "eu-west-1"},
    "backup.s3.forcePathStyle": {**_S3, "backup.s3.forcePathStyle": False},
    "backup.s3.credentialsSecret": {**_S3, "backup.s3.credentialsSecret": "other-s3"},
    "backup.s3.accessKeyIdKey": {**_S3, "backup.s3.accessKeyIdKey": "key-id"},
    "backup.s3.secretAccessKeyKey": {**_S3, "backup.s3.secretAccessKeyKey": "key-secret"},
    "backup.s3.image.repository": {**_S3, "backup.s3.image.repository": "registry.example.com/aws-cli"},
    "backup.s3.image.tag": {**_S3, "backup.s3.image.tag": "2.99.0"},
    "backup.s3.image.pullPolicy": {**_S3, "backup.s3.image.pullPolicy": "Always"},
    "networkPolicy.apiServerCidrs": {"networkPolicy.apiServerCidrs[0]": "10.96.0.1/32"},
    "networkPolicy.dnsNamespace": {"networkPolicy.dnsNamespace": "dns"},
    "networkPolicy.dnsPodLabels": {"networkPolicy.dnsPodLabels.app": "coredns"},
    "networkPolicy.backendEgressCidrs": {"networkPolicy.backendEgressCidrs[0]": "203.0.113.0/24"},
    "networkPolicy.backupStorageCidrs": {"networkPolicy.backupStorageCidrs[0]": "198.51.100.0/24"},
}


def _policy(behavior: str, kind: str, value: int) -> dict[str, Any]:
    """One HPA scaling policy in place of the default list (a list is set element by field)."""
    return {f"{behavior}.policies[0].{name}": item for name, item in (("type", kind), ("value", value), ("periodSeconds", 60))}


for _app in ("backend", "frontend", "nginx"):
    SPECIFIC |= {
        f"{_app}.replicaCount": {f"{_app}.replicaCount": 3},
        f"{_app}.image.pullPolicy": {f"{_app}.image.pullPolicy": "Always"},
        f"{_app}.service.type": {f"{_app}.service.type": "NodePort"},
        f"{_app}.autoscaling.minReplicas": {f"{_app}.autoscaling.minReplicas": 3},
        f"{_app}.autoscaling.behavior.scaleUp.selectPolicy": {f"{_app}.autoscaling.behavior.scaleUp.selectPolicy": "Min"},
        f"{_app}.autoscaling.behavior.scaleDown.selectPolicy": {f"{_app}.autoscaling.behavior.scaleDown.selectPolicy": "Min"},
        f"{_app}.autoscaling.behavior.scaleUp.policies": _policy(f"{_app}.autoscaling.behavior.scaleUp", "Pods", 1),
        f"{_app}.autoscaling.behavior.scaleDown.policies": _policy(f"{_app}.autoscaling.behavior.scaleDown", "Percent", 20),
        f"{_app}.service.httpsPort": {f"{_app}.service.httpsPort": 8443, f"{_app}.service.httpsTargetPort": 8443},
        f"{_app}.service.httpsTargetPort": {f"{_app}.service.httpsPort": 8443, f"{_app}.service.httpsTargetPort": 8443},
        f"{_app}.env": {f"{_app}.env.LOG_LEVEL": "debug"},
        f"{_app}.secretEnv": {f"{_app}.secretEnv.API_TOKEN.secret": "api", f"{_app}.secretEnv.API_TOKEN.key": "token"},
        f"{_app}.securityContext.runAsUser": {f"{_app}.securityContext.runAsUser": 1001},
        f"{_app}.securityContext.runAsGroup": {f"{_app}.securityContext.runAsGroup": 1001},
    }

# Keys whose every other value the settings refuse in prod, before the engine runs, with
# the text the refusal must contain (it names the key).
SETTINGS_REFUSED: dict[str, str] = {
    "kafka.config.uncleanLeaderElectionEnable": "ai-infra-matrix:kafka.config.uncleanLeaderElectionEnable",
    "patroni.persistence.enabled": "ai-infra-matrix:patroni.persistence.enabled",
    "kafka.persistence.enabled": "ai-infra-matrix:kafka.persistence.enabled",
    "kafka.controller.persistence.enabled": "ai-infra-matrix:kafka.controller.persistence.enabled",
    "kafka.controller.dedicated": "Set kafka.controller.dedicated=true",
}
# Changes that run alone: they remove objects or change the topology, and in a batch
# could hide what another change plans.
ALONE = {"backup.destination", "profile", "redisCluster.drain.enabled", "redisCluster.drain.fromMasterCount"}


def _lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# A new value for a text key, by how its name ends (first match).
_TEXT_BY_SUFFIX: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("pullPolicy",), "Always"),
    ((".requests.cpu",), "50m"),
    ((".cpu",), "2"),
    ((".requests.memory",), "64Mi"),
    ((".requests.ephemeralStorage",), "48Mi"),  # below every default limit
    ((".limits.ephemeralStorage",), "2Gi"),  # above every default request
    ((".memory",), "4Gi"),
    (("size", "Size"), "64Gi"),
    ((".tag",), "9.9.9"),
    ((".path", "Path"), "/healthz"),
    (("storageClass", "StorageClass"), "fast-ssd"),
)


def _other(value: Any, key: str) -> Any:
    """A different valid value of the same kind as ``value`` (the prod default of ``key``)."""
    if value is None and key.endswith(("Port", "port")):
        return 8443  # unset by default: a port
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) or value is None:
        text = value or ""
        if key.endswith("Probe.type"):
            return "httpGet" if text == "tcpSocket" else "tcpSocket"
        if key.endswith(".repository"):
            return f"registry.example.com/{text.rsplit('/', 1)[-1]}"
        return next(
            (new for suffixes, new in _TEXT_BY_SUFFIX if key.endswith(suffixes)), f"{text}-changed" if text else "changed"
        )
    raise ValueError(f"{key}: no generic change of {value!r}; add one to SPECIFIC")


def _change(key: str, defaults: dict[str, Any]) -> Change:
    values = SPECIFIC.get(key) or {key: _other(_lookup(defaults, key), key)}
    refused = SETTINGS_REFUSED.get(key) or REFUSED.get(key, "")
    return Change(key, values, refused_by=refused, alone=bool(refused) or key.endswith(".enabled") or key in ALONE)


def changes() -> list[Change]:
    """One change per key of the config reference (but NOT_IN_RENDER_MODE) and per secret key."""
    defaults = load_settings({}, stack=STACK).model_dump(by_alias=True, mode="json")
    found = [_change(key, defaults) for key, _ in config_rows() if key not in NOT_IN_RENDER_MODE]
    for key in SECRET_KEYS:
        refused = REFUSED.get(key, "")
        found.append(Change(key, {key: f"rotated-{key}-0123456789"}, refused_by=refused, alone=bool(refused), secret=True))
    return found


def as_config(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as a nested stack config (for the offline check of a batch)."""
    config: dict[str, Any] = {}
    for path, value in values.items():
        parts = path.replace("]", "").replace("[", ".").split(".")
        node: Any = config
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                node[index] = node[index] if node[index] is not None else container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return config


def config_text(value: Any) -> str:
    """``value`` as `pulumi config set --path` takes it."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


@contextlib.contextmanager
def config_copy(stack_file: Path) -> Iterator[Path]:
    """A copy of ``stack_file`` beside it (its encryption salt with it, so `--secret`
    values encrypt as in the original) for one preview, removed afterwards."""
    copy = stack_file.with_name(f"{stack_file.stem}.preview-{uuid.uuid4().hex[:12]}.yaml")
    shutil.copyfile(stack_file, copy)
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


@dataclass
class Batch:
    """Changes previewed together: every one of them plans safely on its own part."""

    changes: list[Change] = field(default_factory=list)

    @property
    def values(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for change in self.changes:
            merged |= change.values
        return merged

    @property
    def keys(self) -> list[str]:
        return [change.key for change in self.changes]


def _compatible(merged: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether ``values`` can join a batch: every key they share has the same value."""
    return all(merged[key] == value for key, value in values.items() if key in merged)


def batches(all_changes: list[Change]) -> list[Batch]:
    """The changes that must plan safely, one batch per top-level section, each change
    only once per key it sets (two changes of one key cannot share a preview)."""
    grouped: dict[str, list[Batch]] = {}
    for change in all_changes:
        if change.alone or change.refused_by:
            continue
        section = grouped.setdefault(change.section, [Batch()])
        batch = next((b for b in section if _compatible(b.values, change.values)), None)
        if batch is None:
            batch = Batch()
            section.append(batch)
        batch.changes.append(change)
    return [batch for section in grouped.values() for batch in section if batch.changes]


# What a change must never replace or delete by surprise: the data systems' objects and
# the Secrets of their credentials (Kafka UI's login Secret goes with the UI, which keeps
# no data: disabling the UI deletes it, as it deletes the UI).
GUARDED_TYPES = ("StatefulSet", "PersistentVolumeClaim", "Namespace")
GUARDED_SECRETS = ("postgres-secret", "redis-secret", "kafka-kraft-secret", "app-secrets")
UNSAFE_OPS = ("replace", "create-replacement", "delete-replaced", "delete", "discard", "discard-replaced")


@dataclass(frozen=True)
class Previewed:
    returncode: int
    output: str
    unsafe: list[str]  # "op Type name" of every guarded object replaced or deleted
    steps: list[str]  # "op name" of every step that is not "same"


def previewed(returncode: int, stdout: str, stderr: str) -> Previewed:
    """What `pulumi preview --json` printed, judged: the guarded objects it replaces or deletes."""
    output = stdout + stderr
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return Previewed(returncode, output, [], [])
    steps = [step for step in document.get("steps", []) if step["op"] != "same"]
    messages = "".join(item.get("message", "") for item in document.get("diagnostics", []))
    return Previewed(returncode, output + messages, unsafe_steps(steps), [f"{s['op']} {step_name(s)}" for s in steps])


def step_name(step: dict[str, Any]) -> str:
    return step["urn"].rsplit("::", 1)[1]


def unsafe_steps(steps: list[dict[str, Any]]) -> list[str]:
    found = []
    for step in steps:
        kind = step["urn"].split("::")[2].rsplit(":", 1)[-1]
        guarded = kind in GUARDED_TYPES or (kind == "Secret" and step_name(step) in GUARDED_SECRETS)
        if not guarded or step["op"] not in UNSAFE_OPS:
            continue
        if step["op"] == "delete" and (step.get("oldState") or {}).get("retainOnDelete"):
            continue  # Pulumi forgets it; the object (a backup claim) stays in the cluster
        found.append(f"{step['op']} {kind} {step_name(step)}")
    return found


# Preview ``values`` (dotted key -> value; ``secrets``: the keys set as secrets) over the
# deployed stack and put its config back: the engine run, in render mode or for real.
Preview = Callable[[dict[str, Any], frozenset[str]], Previewed]


def safe_failures(preview: Preview, batch: Batch) -> list[str]:
    """What is wrong with ``batch``'s plan (empty: every change plans safely); a failed
    batch is previewed change by change, so the message names the key."""
    secrets = frozenset(key for change in batch.changes if change.secret for key in change.values)
    result = preview(batch.values, secrets)
    if result.returncode == 0 and not result.unsafe:
        return []
    if len(batch.changes) == 1:
        change = batch.changes[0]
        problem = f"plans {result.unsafe}" if result.returncode == 0 else f"fails:\n{result.output[-3000:]}"
        return [f"{change.key} = {change.values}: {problem}"]
    return [failure for change in batch.changes for failure in safe_failures(preview, Batch([change]))]


def refusal_failure(preview: Preview, change: Change) -> str:
    """Why ``change`` was not refused as it must be ("" when it was, naming its lock)."""
    result = preview(change.values, frozenset(change.values) if change.secret else frozenset())
    if result.returncode == 0:
        return f"{change.key} = {change.values}: expected refusal by {change.refused_by!r}, planned {result.steps}"
    if change.refused_by not in result.output:
        return f"{change.key}: refused without naming {change.refused_by!r}:\n{result.output[-3000:]}"
    if "Traceback" in result.output and "KeyboardInterrupt" not in result.output:
        # (a refusal by the engine cancels the program, whose interpreter then reports the
        # interrupt on stderr; any other traceback is a defect)
        return f"{change.key}: refused with a Python traceback:\n{result.output[-3000:]}"
    return ""


# Previews run side by side, each with a stack file of its own: the program, the engine and
# the provider each wait on the others part of the time, so two at once use both cores
# (no same-run comparison with one at a time has been made yet).
PREVIEW_WORKERS = int(os.environ.get("AI_INFRA_PREVIEW_WORKERS", "2"))


def judge(preview: Preview, selected: list[Change]) -> tuple[list[str], dict[str, str]]:
    """Every change of ``selected`` previewed (the safe ones in batches): the failures, and
    the keys refused as they must be, with the refusal. ``preview`` is called from
    PREVIEW_WORKERS threads at once."""

    def one(item: Batch | Change) -> tuple[list[str], dict[str, str]]:
        if isinstance(item, Batch):
            return safe_failures(preview, item), {}
        if not item.refused_by:
            return safe_failures(preview, Batch([item])), {}
        if failure := refusal_failure(preview, item):
            return [failure], {}
        return [], {item.key: item.refused_by}

    work: list[Batch | Change] = [*batches(selected), *(change for change in selected if change.alone)]
    failures: list[str] = []
    refused: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, PREVIEW_WORKERS)) as pool:
        for found, keys in pool.map(one, work):
            failures += found
            refused |= keys
    return failures, refused
