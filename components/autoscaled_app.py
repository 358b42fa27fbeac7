"""AutoscaledApp: one stateless tier of the platform (backend, frontend, nginx) as a
Deployment, its Service, an autoscaling/v2 HPA and a PodDisruptionBudget."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components import k8s as shapes
from components import kube_objects as kube
from components.wiring import MetricsEndpoint, Pods
from settings.apps import AppSettings, ProbeSettings

# Server-side apply with force=true (the provider's annotation, metadata/annotations.go).
PATCH_FORCE = "pulumi.com/patchForce"


@dataclass(frozen=True)
class AutoscaledAppArgs:
    app: str  # "backend": the workload name inside the release
    release: str
    namespace: str
    settings: AppSettings
    image_pull_secrets: list[str] = field(default_factory=list)
    # Env the platform wires in (database host, Secret refs...), after the app's own env.
    extra_env: list[shapes.Obj] = field(default_factory=list)
    cluster_domain: str = "cluster.local"


@dataclass(frozen=True)
class AppNames(shapes.StackNames):
    """Every name the component derives from the release and the tier."""

    app: str

    @property
    def full(self) -> str:
        return f"{self.release}-{self.app}"  # Deployment and Service

    @property
    def hpa(self) -> str:
        return f"{self.full}-hpa"

    @property
    def pdb(self) -> str:
        return f"{self.full}-pdb"

    @property
    def service_host(self) -> str:
        return self.host(self.full)


@dataclass(frozen=True)
class AppOutputs:
    """What the rest of the platform may use of one tier."""

    names: AppNames
    pods: Pods
    host: str  # the Service's in-cluster DNS name
    port: int  # the Service's HTTP port
    http_port: int  # the container port behind it (what a NetworkPolicy sees)
    https_port: int | None  # the container's HTTPS port, when it has one
    service_type: str
    hpa: str | None  # the HPA's name, when autoscaling is on
    scales: bool  # the HPA can add pods (minReplicas < maxReplicas)

    def metrics(self, path: str) -> MetricsEndpoint:
        """The tier's own metrics, served on its HTTP port at ``path``."""
        return MetricsEndpoint(self.names.app, self.names.full, self.pods.match_labels, "http", self.http_port, path)


class AutoscaledApp(pulumi.ComponentResource):
    """A Deployment whose replica count belongs to its HPA when autoscaling is on."""

    deployment: kube.Deployment
    service: kube.Service
    hpa: kube.HorizontalPodAutoscaler | None
    pdb: kube.PodDisruptionBudget | None
    outputs: AppOutputs

    def __init__(self, name: str, args: AutoscaledAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:AutoscaledApp", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        names = AppNames(args.release, args.namespace, args.cluster_domain, app=args.app)
        full_name = names.full
        selector = shapes.selector_labels(args.release, args.app)
        labels = shapes.common_labels(args.release, args.app, args.app)

        spec = _deployment_spec(args, full_name, selector, labels)
        self.deployment = kube.Deployment(
            f"{name}-deployment",
            metadata=shapes.metadata(full_name, args.namespace, labels, _deployment_annotations(args, spec)),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=_replicas_owned_by_hpa(settings)),
        )
        self.service = kube.Service(
            f"{name}-service",
            metadata=shapes.service_metadata(full_name, args.namespace, labels),
            spec=_service_spec(settings, selector),
            opts=child,
        )
        self.hpa = None
        if settings.autoscaling.enabled:
            self.hpa = kube.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=shapes.metadata(names.hpa, args.namespace, labels),
                spec=_hpa_spec(settings, full_name),
                opts=child,
            )
        self.pdb = None
        if _minimum_replicas(settings) >= 2:
            self.pdb = shapes.pod_disruption_budget(
                f"{name}-pdb",
                name=names.pdb,
                namespace=args.namespace,
                labels=labels,
                selector=selector,
                max_unavailable=1,
                opts=child,
            )
        autoscaling = settings.autoscaling
        self.outputs = AppOutputs(
            names=names,
            pods=Pods(args.app, selector),
            host=names.service_host,
            port=settings.service.port,
            http_port=settings.service.target_port,
            https_port=settings.service.https_target_port,
            service_type=settings.service.type,
            hpa=names.hpa if autoscaling.enabled else None,
            scales=autoscaling.enabled and autoscaling.min_replicas < autoscaling.max_replicas,
        )
        self.register_outputs({"serviceHost": names.service_host, "servicePort": settings.service.port})


# --- private builders ----------------------------------------------------------------


def _minimum_replicas(settings: AppSettings) -> int:
    return settings.autoscaling.min_replicas if settings.autoscaling.enabled else settings.replica_count


def _deployment_spec(args: AutoscaledAppArgs, full_name: str, selector: dict[str, str], labels: dict[str, str]) -> shapes.Obj:
    settings = args.settings
    spec: shapes.Obj = {
        "selector": {"matchLabels": selector},
        # Surge first, never go below the desired count: a rollout adds a new pod and
        # removes an old one only once the new one is ready.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "minReadySeconds": 5,
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": labels},
            "spec": _pod_spec(args, selector),
        },
    }
    # Always declared. Dropping it when the HPA is turned on would make server-side apply
    # remove a field only Pulumi owns, and the API server would default a running
    # Deployment to 1 replica before the HPA scales it back. With the HPA on, this is
    # only the count a new Deployment starts with; ignore_changes keeps the live count on
    # every later update (see _replicas_owned_by_hpa).
    spec["replicas"] = settings.autoscaling.min_replicas if settings.autoscaling.enabled else settings.replica_count
    return spec


# Provider v4 under server-side apply, for an ignored field (await.go,
# handleSSAIgnoreFields): once the HPA has written spec.replicas (through the scale
# subresource, which moves the field to kube-controller-manager), the field is left out
# of the apply; while Pulumi still owns it, the live value is sent. Either way an update
# never changes the count the HPA chose, and the engine keeps the previous input, so the
# update that turns the HPA on keeps the running count too.
_HPA_OWNED = ["spec.replicas"]


def _replicas_owned_by_hpa(settings: AppSettings) -> list[str]:
    return list(_HPA_OWNED) if settings.autoscaling.enabled else []


def _deployment_annotations(args: AutoscaledAppArgs, spec: shapes.Obj) -> dict[str, str]:
    annotations = _checkov_skips(args, spec)
    if not args.settings.autoscaling.enabled:
        # Turning the HPA off: the HPA controller still owns spec.replicas (it wrote it
        # last), and an apply without force fails with a field conflict instead of
        # setting replicaCount. Without an HPA the program is the one owner of the count.
        annotations[PATCH_FORCE] = "true"
    return annotations


def _pod_spec(args: AutoscaledAppArgs, selector: dict[str, str]) -> shapes.Obj:
    settings = args.settings
    service = settings.service
    container_ports = [service.target_port] + ([service.https_target_port] if service.https_target_port is not None else [])
    ports = [
        {"name": name, "containerPort": port, "protocol": "TCP"}
        for name, port in zip(("http", "https"), container_ports, strict=False)
    ]
    lowest_port = min(container_ports)
    writable = ["/tmp", *(("/var/cache/nginx", "/var/run") if args.app == "nginx" else ())]
    # The image is the application's, not ours: how it spreads its writes over these paths
    # is unknown, so each may take the container's whole ephemeral-storage limit (the
    # kubelet holds the pod to that total).
    budget = settings.resources.limits.ephemeral_storage
    volumes = [
        shapes.scratch_volume(_volume_name(path), budget) if budget else {"name": _volume_name(path), "emptyDir": {}}
        for path in writable
    ]
    container: shapes.Obj = {
        "name": args.app,
        "image": settings.image.reference,
        "imagePullPolicy": settings.image.pull_policy,
        "ports": ports,
        "resources": shapes.container_resources(settings.resources),
        "livenessProbe": _probe(settings.liveness_probe),
        "readinessProbe": _probe(settings.readiness_probe),
        "securityContext": shapes.container_security_context(as_root=settings.security_context.run_as_user == 0),
        # The root filesystem is read-only; these are the paths the image writes to.
        "volumeMounts": [{"name": _volume_name(path), "mountPath": path} for path in writable],
    }
    env = _env(args)
    if env:  # an empty list would be dropped by the provider and show as a diff
        container["env"] = env
    pod: shapes.Obj = {
        # The apps do not call the Kubernetes API; no token is mounted for them to leak.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # A port below 1024 (nginx on 80/443) is opened by the sysctl, not by a capability.
        "securityContext": shapes.pod_security_context(
            run_as_user=settings.security_context.run_as_user,
            run_as_group=settings.security_context.run_as_group,
            unprivileged_port_start=lowest_port if lowest_port < 1024 else None,
        ),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
        **shapes.spread(selector, require_separate_nodes=False),
        **shapes.image_pull_secrets(args.image_pull_secrets),
    }
    return pod


def _checkov_skips(args: AutoscaledAppArgs, spec: shapes.Obj) -> dict[str, str]:
    reasons = dict(shapes.PINNED_IMAGE_SKIPS)
    uid = args.settings.security_context.run_as_user
    if uid is None:
        reasons["CKV_K8S_40"] = (
            f"runs as the non-root user the {args.app} image is built with (runAsNonRoot is enforced, every "
            f"capability dropped, root filesystem read-only); set {args.app}.securityContext.runAsUser to pin one"
        )
    elif uid < 10000:
        reasons["CKV_K8S_40"] = f"runs as uid {uid}, the user the {args.app} image expects ({args.app}.securityContext.runAsUser)"
    if shapes.reads_secret_env(*spec["template"]["spec"]["containers"]):
        reasons["CKV_K8S_35"] = (
            f"the {args.app} reads its database, cache and signing credentials from environment variables "
            "(the guide's contract, no file option); each comes from a Secret, never the pod spec"
        )
    ignores = {}
    if not args.settings.autoscaling.enabled and args.settings.replica_count < 2:
        ignores["deployment-replicas"] = (
            f"{args.app}.replicaCount is {args.settings.replica_count} (dev runs one of everything); prod refuses "
            "fewer than 2 replicas"
        )
    if args.settings.autoscaling.enabled:
        ignores["deployment-targeted-by-hpa-does-not-have-replicas-configured"] = (
            "spec.replicas is the HPA's minReplicas for the first create only: ignore_changes keeps every later "
            "`pulumi up` from sending it again, so the HPA's count is never reset; without it, turning the HPA on "
            "drops the running Deployment to 1 (server-side apply removes the field Pulumi owned)"
        )
    return shapes.scan_exceptions(reasons, ignores)


def _volume_name(path: str) -> str:
    return "writable-" + path.strip("/").replace("/", "-")


def _env(args: AutoscaledAppArgs) -> list[shapes.Obj]:
    settings = args.settings
    env = [shapes.env_value(name, value) for name, value in sorted(settings.env.items())]
    env += [shapes.env_from_secret(name, ref.secret, ref.key) for name, ref in sorted(settings.secret_env.items())]
    return env + list(args.extra_env)


def _probe(probe: ProbeSettings) -> shapes.Obj:
    if probe.type == "tcpSocket":
        return shapes.tcp_probe(
            "http",
            initial_delay=probe.initial_delay_seconds,
            period=probe.period_seconds,
            timeout=probe.timeout_seconds,
            failures=probe.failure_threshold,
        )
    return shapes.http_probe(
        probe.path,
        "http",
        initial_delay=probe.initial_delay_seconds,
        period=probe.period_seconds,
        timeout=probe.timeout_seconds,
        failures=probe.failure_threshold,
    )


def _service_spec(settings: AppSettings, selector: dict[str, str]) -> shapes.Obj:
    service = settings.service
    ports = [{"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}]
    if service.https_port is not None:
        ports.append({"name": "https", "port": service.https_port, "targetPort": "https", "protocol": "TCP"})
    spec: shapes.Obj = {"type": service.type, "selector": selector, "ports": ports}
    if service.type == "LoadBalancer":
        # Keep the client's source address and skip the extra node hop.
        spec["externalTrafficPolicy"] = "Local"
    return spec


def _hpa_spec(settings: AppSettings, deployment_name: str) -> shapes.Obj:
    autoscaling = settings.autoscaling
    metrics = []
    for resource, target in (
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
                }
            )
    spec: shapes.Obj = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": metrics,
    }
    if autoscaling.behavior is not None:
        spec["behavior"] = autoscaling.behavior.model_dump(by_alias=True)
    return spec
