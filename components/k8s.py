"""Small shared builders for Kubernetes object shapes: labels, security contexts,
spreading, PDBs, probes, env from Secrets, checksums. Every component builds these
shapes through here, so a rule (say, the restricted security context) lives once.

Objects are plain dicts in Kubernetes' own camelCase, the shape a reviewer sees in the
rendered manifests; components/kube_objects.py registers them unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components import kube_objects as kube
from components.wiring import Obj, SecretKeyRef
from settings.base import ImageSettings, PersistenceSettings, ResourceSettings, canonical_quantity, parse_quantity

PART_OF = "ai-infra-matrix"

# --- labels ----------------------------------------------------------------------------


def selector_labels(release: str, name: str) -> dict[str, str]:
    """The labels that select one workload's pods. Stable for the life of the workload:
    StatefulSet and Deployment selectors are immutable."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": release}


def common_labels(release: str, name: str, component: str) -> dict[str, str]:
    """Selector labels plus the descriptive ones every object carries."""
    return {
        **selector_labels(release, name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def metadata(name: str, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# The provider's annotation for "create or update, then do not wait for readiness": for
# objects whose readiness the provider cannot judge (each use says why).
SKIP_AWAIT: Mapping[str, str] = {"pulumi.com/skipAwait": "true"}


def service_metadata(name: str, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None) -> Obj:
    """Metadata of a Service. Every Service skips the provider's await: it holds one of the
    engine's parallel steps (4 per core by default) until the Service's endpoints have not
    changed for 10 s, also when no pod is ready yet, so on a first `pulumi up` the Services
    of the systems registered first (7 in prod) kept the Secrets, locks and StatefulSets
    of the next ones waiting about 10 s (seen in the engine's event log on 2 cores). What
    a Service serves is ready when its workload is, and the workloads' own awaits and
    Jobs say that. A LoadBalancer's address may never come where no load-balancer
    controller runs (kind, kubeadm, bare metal): it reaches the nginxExternalAddress
    output once assigned (a refresh or the next up)."""
    return metadata(name, namespace, labels, {**(annotations or {}), **SKIP_AWAIT})


# --- security ------------------------------------------------------------------------

# The Pod Security Standards "restricted" profile, which the namespace enforces.
RUNTIME_DEFAULT_SECCOMP: Obj = {"type": "RuntimeDefault"}


def pod_security_context(
    *,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    fs_group: int | None = None,
    unprivileged_port_start: int | None = None,
) -> Obj:
    """``unprivileged_port_start``: the lowest port a non-root process may bind in the
    pod's own network namespace (a namespaced sysctl the restricted profile allows).
    Unlike adding NET_BIND_SERVICE, it works for a non-root user without file
    capabilities on the binary, and the container keeps every capability dropped.
    ``run_as_user`` 0 (root, only below the restricted level) drops runAsNonRoot."""
    context: Obj = {"runAsNonRoot": run_as_user != 0, "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP)}
    if unprivileged_port_start is not None:
        context["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": str(unprivileged_port_start)}]
    if run_as_user is not None:
        context["runAsUser"] = run_as_user
        context["runAsGroup"] = run_as_user if run_as_group is None else run_as_group
    if fs_group is not None:
        context["fsGroup"] = fs_group
        # Only chown the volume when its root is wrong, not on every start of a large volume.
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    return context


def container_security_context(*, bind_low_ports: bool = False, read_only_root: bool = True, as_root: bool = False) -> Obj:
    """No privilege escalation, every capability dropped. NET_BIND_SERVICE (the only one
    the restricted profile lets a container add) is added back for ports below 1024."""
    capabilities: Obj = {"drop": ["ALL"]}
    if bind_low_ports:
        capabilities["add"] = ["NET_BIND_SERVICE"]
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": not as_root,
        "capabilities": capabilities,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


def checkov_skips(reasons: Mapping[str, str]) -> dict[str, str]:
    """Annotations that record, on the object itself, why a checkov check does not apply
    to it (``checkov.io/skipN: CKV_K8S_xx=reason``): the scan in tests/manifest/
    test_checkov.py fails on any other finding and on a skip without a reason. Put them
    on the metadata of the object checkov reports (the workload, not its pod template)."""
    for check, reason in reasons.items():
        # checkov splits the value on "=" and expects exactly two parts.
        if not check.startswith("CKV") or not reason.strip() or "=" in check + reason:
            raise ValueError(f"checkov skip {check!r} needs a check id and a reason without '=', got {reason!r}")
    return {f"checkov.io/skip{index}": f"{check}={reasons[check]}" for index, check in enumerate(sorted(reasons), start=1)}


# The skips every workload of the platform shares: its images are pinned by version tag.
PINNED_IMAGE_SKIPS: dict[str, str] = {
    "CKV_K8S_15": (
        "IfNotPresent is deliberate: tags are pinned versions (prod refuses an empty tag and latest), so a "
        "cached image is the same image, and a restarted or failed-over pod does not wait on the registry; "
        "image.pullPolicy Always is still accepted"
    ),
    "CKV_K8S_43": (
        "images are pinned by exact version tag from config (image.tag; prod refuses an empty tag and latest) "
        "as the guide names them; the config has no digest field, so make tags immutable in the registry"
    ),
}


def kube_score_ignores(reasons: Mapping[str, str]) -> dict[str, str]:
    """The ``kube-score/ignore`` annotation for the kube-score checks that do not apply to
    an object, each named with its reason here in code (kube-score's annotation has no
    room for one): tests/manifest/test_kube_score.py fails on any other finding. Like the
    checkov skips, it goes on the metadata of the object kube-score reports."""
    for check, reason in reasons.items():
        if not check or "," in check or not reason.strip():
            raise ValueError(f"kube-score ignore {check!r} needs a check id and a reason, got {reason!r}")
    return {"kube-score/ignore": ",".join(sorted(reasons))} if reasons else {}


# kube-score checks that are checkov checks under another name: a checkov skip's reason
# is the reason to ignore its twin too, so the two scans cannot disagree about an object.
KUBE_SCORE_TWINS = {
    "CKV_K8S_15": "container-image-pull-policy",  # pull policy Always
    "CKV_K8S_40": "container-security-context-user-group-id",  # uid (and gid) above 10000
}


def scan_exceptions(checkov: Mapping[str, str], kube_score: Mapping[str, str] | None = None) -> dict[str, str]:
    """The annotations of an object's justified scanner exceptions: ``checkov`` skips (see
    ``checkov_skips``), the kube-score twins of those skips with the same reasons, and
    ``kube_score`` ignores of kube-score's own checks, check id -> reason."""
    twins = {KUBE_SCORE_TWINS[check]: reason for check, reason in checkov.items() if check in KUBE_SCORE_TWINS}
    return {**checkov_skips(checkov), **kube_score_ignores({**twins, **(kube_score or {})})}


def reads_secret_env(*containers: Obj) -> bool:
    """Whether any container takes a Secret's value as an environment variable."""
    return any("secretKeyRef" in (entry.get("valueFrom") or {}) for container in containers for entry in container.get("env", []))


def pod_security_labels(level: str = "restricted") -> dict[str, str]:
    """Namespace labels for Pod Security Admission: enforce, audit and warn at ``level``."""
    return {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")} | {
        f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")
    }


# --- scheduling ----------------------------------------------------------------------

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def spread(selector: Mapping[str, str], *, require_separate_nodes: bool) -> Obj:
    """Pod spec fields that spread replicas over nodes and zones.

    ``require_separate_nodes``: two replicas never share a node (stateful members whose
    quorum must survive a node loss); otherwise that is only preferred, so a small
    cluster can still schedule every replica of a stateless app."""
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": HOSTNAME}
    if require_separate_nodes:
        anti_affinity: Obj = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    else:
        anti_affinity = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    return {
        "affinity": {"podAntiAffinity": anti_affinity},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE,
                # Zones are a preference: clusters without zone labels still schedule.
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(selector)},
            }
        ],
    }


def pod_disruption_budget(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    max_unavailable: int,
    opts: pulumi.ResourceOptions,
) -> kube.PodDisruptionBudget:
    """A PDB by ``maxUnavailable``: unlike ``minAvailable`` it keeps meaning the same
    thing when the replica count changes, and never blocks every drain."""
    return kube.PodDisruptionBudget(
        resource_name,
        metadata=metadata(name, namespace, labels),
        spec={
            "maxUnavailable": max_unavailable,
            "selector": {"matchLabels": dict(selector)},
            # Evicting a pod that is not ready yet costs nothing; without this a stuck
            # pod blocks node drains forever.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
        opts=opts,
    )


@dataclass(frozen=True)
class ServiceAccountWithRole:
    account: kube.ServiceAccount
    role: kube.Role
    binding: kube.RoleBinding


def service_account_with_role(
    resource_prefix: str,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    rules: list[Obj],
    opts: pulumi.ResourceOptions,
) -> ServiceAccountWithRole:
    """A ServiceAccount, a Role of ``rules`` and the RoleBinding between them, all called
    ``name`` (resources <prefix>-service-account, -role, -role-binding): the identity of
    pods that talk to the API server, allowed exactly ``rules`` in their namespace."""
    return ServiceAccountWithRole(
        account=kube.ServiceAccount(f"{resource_prefix}-service-account", metadata=metadata(name, namespace, labels), opts=opts),
        role=kube.Role(f"{resource_prefix}-role", metadata=metadata(name, namespace, labels), rules=rules, opts=opts),
        binding=kube.RoleBinding(
            f"{resource_prefix}-role-binding",
            metadata=metadata(name, namespace, labels),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            opts=opts,
        ),
    )


def script_job_spec(
    *,
    container: str,
    image: ImageSettings,
    command: list[str],
    labels: Mapping[str, str],
    run_as_user: int,
    config_volume: Obj,
    config_dir: str,
    resources: Obj,
    backoff_limit: int,
    deadline_seconds: int,
    image_pull_secret_names: Sequence[str],
    env: list[Obj] | None = None,
    service_account: str | None = None,
    template_annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> Obj:
    """The spec of a Job that runs one script of a component's ConfigMap (``config_volume``,
    mounted read-only at ``config_dir``) in the component's own image, with a 16Mi /tmp
    (the scripts write nothing else). With ``service_account`` its token is mounted (the
    script talks to the API server); without, none is."""
    pod: Obj = {
        "restartPolicy": "OnFailure",
        **({"serviceAccountName": service_account} if service_account else {}),
        "automountServiceAccountToken": bool(service_account),
        "enableServiceLinks": False,
        "securityContext": pod_security_context(run_as_user=run_as_user),
        "containers": [
            {
                "name": container,
                "image": image.reference,
                "imagePullPolicy": image.pull_policy,
                "command": command,
                **({"env": env} if env is not None else {}),
                "resources": resources,
                # A failed run's last log lines stay in the pod's status through the restart
                # of the next attempt, and `pulumi up` prints them with the failure.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": container_security_context(),
                "volumeMounts": [
                    {"name": config_volume["name"], "mountPath": config_dir, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [config_volume, scratch_volume("tmp", "16Mi")],
        **image_pull_secrets(image_pull_secret_names),
    }
    template_metadata: Obj = {"labels": dict(labels)}
    if template_annotations:
        template_metadata["annotations"] = dict(template_annotations)
    return {
        "backoffLimit": backoff_limit,
        "activeDeadlineSeconds": deadline_seconds,
        "template": {"metadata": template_metadata, "spec": pod},
    }


# A Job that failed (a refused change, a member that never became Ready) is replaced, and
# so run again, by the next `pulumi up` instead of being left failed in the state.
REPLACE_UNREADY_JOB = {"pulumi.com/replaceUnready": "true"}


# --- containers ----------------------------------------------------------------------


def http_probe(path: str, port: int | str, *, initial_delay: int, period: int, timeout: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def tcp_probe(port: int | str, *, period: int, timeout: int, failures: int, initial_delay: int = 0) -> Obj:
    """A TCP connect probe: the process holds its port open. The liveness check of
    servers whose readiness probe checks serving, so a slow, overloaded pod is taken out
    of rotation by the readiness probe and not restarted by the liveness one.
    ``initial_delay`` 0 is left out (the provider drops it and would show a diff)."""
    probe: Obj = {"tcpSocket": {"port": port}}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe | {"periodSeconds": period, "timeoutSeconds": timeout, "failureThreshold": failures}


def env_value(name: str, value: str) -> Obj:
    return {"name": name, "value": value}


def env_from_secret(name: str, secret: pulumi.Input[str], key: str) -> Obj:
    """An env var read from a Secret key, so the value never shows in the pod spec."""
    return SecretKeyRef(secret, key).env(name)


def env_from_field(name: str, field_path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def image_pull_secrets(names: Sequence[str]) -> Obj:
    """The pod spec's ``imagePullSecrets``, or nothing when there are none (an empty list
    would be dropped by the provider and show as a diff)."""
    return {"imagePullSecrets": [{"name": name} for name in names]} if names else {}


# --- DNS -------------------------------------------------------------------------------


def service_host(service: str, namespace: str, cluster_domain: str) -> str:
    """In-cluster DNS name of a Service: ``<service>.<namespace>.svc.<clusterDomain>``
    (svc.cluster.local with the default clusterDomain). Every DNS name is built here."""
    return f"{service}.{namespace}.svc.{cluster_domain}"


def pod_host(pod: str, headless_service: str, namespace: str, cluster_domain: str) -> str:
    """Stable DNS name of a StatefulSet pod through its headless Service."""
    return f"{pod}.{service_host(headless_service, namespace, cluster_domain)}"


@dataclass(frozen=True)
class StackNames:
    """Where a component's objects live; each component's public names object extends it
    with the names it derives from the release."""

    release: str
    namespace: str
    cluster_domain: str

    def host(self, service: str) -> str:
        return service_host(service, self.namespace, self.cluster_domain)

    def pod_host(self, pod: str, headless_service: str) -> str:
        return pod_host(pod, headless_service, self.namespace, self.cluster_domain)


# --- volumes ---------------------------------------------------------------------------


def claim_spec(size: str, storage_class: str) -> Obj:
    """A ReadWriteOnce PersistentVolumeClaim spec; no storage class: the cluster default."""
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return spec


def volume_claim_templates(
    claim: str, persistence: PersistenceSettings, stack_storage_class: str, labels: Mapping[str, str]
) -> Obj:
    """StatefulSet spec fields that give each pod the volume ``claim``, kept when the pod
    is deleted or scaled away (scaling back up, or a pod removed outside Pulumi, finds its
    data again); nothing when persistence is off. ``labels`` stay as each StatefulSet
    was created with them: claim templates cannot change on a live StatefulSet."""
    if not persistence.enabled:
        return {}
    storage_class = persistence.storage_class or stack_storage_class
    return {
        "volumeClaimTemplates": [
            {"metadata": {"name": claim, "labels": dict(labels)}, "spec": claim_spec(persistence.size, storage_class)}
        ],
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    }


def scratch_volume(name: str, size_limit: str, *, memory: bool = False) -> Obj:
    """An emptyDir capped at ``size_limit``: on the node's disk, counted against the
    ephemeral-storage limit of the containers that write it (so size those to cover it),
    or with ``memory`` a tmpfs counted against their memory. A writer that fills it gets
    its own pod evicted instead of filling the node's disk and evicting its neighbours."""
    empty_dir: Obj = {"sizeLimit": canonical_quantity(size_limit)}
    if memory:
        empty_dir = {"medium": "Memory"} | empty_dir
    return {"name": name, "emptyDir": empty_dir}


def data_volume(name: str, persistence: PersistenceSettings) -> list[Obj]:
    """The volume ``name`` for data when persistence is off: an emptyDir capped at the
    persistence size (the size the claim would have had); nothing when a claim template
    provides it. Its writer's ephemeral storage must cover it: ``container_resources``
    with ``scratch=unclaimed_size(persistence)``."""
    return [] if persistence.enabled else [scratch_volume(name, persistence.size)]


def unclaimed_size(persistence: PersistenceSettings) -> str | None:
    """The data that lands on the node's disk for lack of a claim: the persistence size
    when persistence is off, else none."""
    return None if persistence.enabled else persistence.size


def container_resources(resources: ResourceSettings, *, scratch: str | None = None) -> Obj:
    """A container's ``resources`` block from its settings; ``scratch``: the size of a
    data volume it writes on the node's disk (``unclaimed_size``), added to its
    ephemeral-storage request and limit so scheduling and eviction account for it."""
    block = resources.as_kubernetes()
    if scratch is None:
        return block
    key = "ephemeral-storage"
    for part in ("requests", "limits"):
        amounts = block.setdefault(part, {})
        total = int(parse_quantity(amounts.get(key, "0")) + parse_quantity(scratch))
        # In binary units when the sum is whole KiB, as Kubernetes writes such a sum back.
        amounts[key] = canonical_quantity(f"{total // 1024}Ki" if total % 1024 == 0 else str(total))
    return block


# Pod-template annotations that roll the pods when what they read changes: the files
# from ConfigMaps, and (separately, since it covers generated values) the credentials.
CONFIG_CHECKSUM = "ai-infra-matrix/config-checksum"
CREDENTIALS_CHECKSUM = "ai-infra-matrix/credentials-checksum"


def checksum(*parts: str) -> str:
    """A content hash for a pod-template annotation, so a config change rolls the pods."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
