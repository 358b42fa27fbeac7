"""Settings of the application tier: backend, frontend and nginx, each an autoscaled
Deployment. Keys follow the guide's values (``backend.autoscaling.minReplicas``...)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from settings.base import ConfigModel, ImageSettings, Problem, ResourceSettings

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _scalar_as_text(value: object) -> object:
    # Env values are strings in Kubernetes; YAML turns `86400` and `true` into other types.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_scalar_as_text)]


class ScalingPolicy(ConfigModel):
    type: Literal["Pods", "Percent"] = Field(description="Pods or Percent")
    value: int = Field(ge=1, description="pods or percent per period")
    period_seconds: int = Field(ge=1, le=1800, description="length of the policy's window")


class ScalingRules(ConfigModel):
    stabilization_window_seconds: int = Field(ge=0, le=3600, description="how long a recommendation must hold first")
    select_policy: Literal["Max", "Min", "Disabled"] = Field(default="Max", description="which policy wins")
    policies: list[ScalingPolicy] = Field(min_length=1, description="list of {type, value, periodSeconds}")


class ScalingBehavior(ConfigModel):
    scale_up: ScalingRules = Field(description="how fast the HPA adds pods")
    scale_down: ScalingRules = Field(description="how fast the HPA removes pods")


class AutoscalingSettings(ConfigModel):
    enabled: bool = Field(default=False, description="create an HPA; the Deployment's replica count is then the HPA's")
    min_replicas: int = Field(default=1, ge=1, description="HPA floor; must be <= maxReplicas (prod: >= 2)")
    max_replicas: int = Field(default=1, ge=1, description="HPA ceiling")
    # Names as in the guide (and the Helm convention), so values files carry over.
    target_cpu_utilization_percentage: int | None = Field(
        default=70,
        ge=1,
        le=1000,
        alias="targetCPUUtilizationPercentage",
        description="average CPU utilization target, % of request",
    )
    target_memory_utilization_percentage: int | None = Field(
        default=80, ge=1, le=1000, description="average memory utilization target, % of request"
    )
    behavior: ScalingBehavior | None = Field(default=None, description="autoscaling/v2 scaleUp/scaleDown behaviour")

    def problems(self, key: str) -> list[Problem]:
        found: list[Problem] = []
        if self.min_replicas > self.max_replicas:
            found.append(
                Problem(
                    f"{key}.minReplicas",
                    f"minReplicas ({self.min_replicas}) is greater than maxReplicas ({self.max_replicas}); "
                    "set minReplicas <= maxReplicas",
                )
            )
        if self.enabled and self.target_cpu_utilization_percentage is None and self.target_memory_utilization_percentage is None:
            found.append(
                Problem(
                    f"{key}.targetCPUUtilizationPercentage",
                    "autoscaling is enabled without a CPU or memory target; set at least one of them",
                )
            )
        return found


class ServiceSettings(ConfigModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(default="ClusterIP", description="Service type")
    port: int = Field(ge=1, le=65535, description="Service port")
    target_port: int = Field(ge=1, le=65535, description="container port the Service sends to")
    # nginx terminates TLS too (the guide's values-prod: 443 -> 443).
    https_port: int | None = Field(default=None, ge=1, le=65535, description="optional HTTPS Service port")
    https_target_port: int | None = Field(default=None, ge=1, le=65535, description="container port for HTTPS")

    def problems(self, key: str) -> list[Problem]:
        if (self.https_port is None) != (self.https_target_port is None):
            return [Problem(f"{key}.httpsPort", "set httpsPort and httpsTargetPort together, or neither")]
        if self.https_port is not None and self.https_port == self.port:
            return [Problem(f"{key}.httpsPort", f"httpsPort {self.https_port} equals port; use a different port")]
        return []


class ProbeSettings(ConfigModel):
    type: Literal["httpGet", "tcpSocket"] = Field(
        default="httpGet", description="httpGet: GET path on the http port; tcpSocket: only connect to the http port"
    )
    path: str = Field(default="/health", pattern=r"^/", description="HTTP path probed on the http port (httpGet)")
    initial_delay_seconds: int = Field(default=10, ge=0, description="seconds before the first probe")
    period_seconds: int = Field(default=10, ge=1, description="seconds between probes")
    timeout_seconds: int = Field(default=3, ge=1, description="seconds before a probe times out")
    failure_threshold: int = Field(default=3, ge=1, description="failures in a row that count")


class SecretEnvRef(ConfigModel):
    """An env var taken from an existing Kubernetes Secret (never a literal)."""

    secret: str = Field(min_length=1, description="name of the Secret")
    key: str = Field(min_length=1, description="key inside the Secret")


class AppSecurityContext(ConfigModel):
    """Which user the tier's container runs as. Unset: the user the image is built with,
    which must not be root (runAsNonRoot is enforced)."""

    run_as_user: int | None = Field(
        default=None, ge=0, description="UID the container runs as; 0 (root) needs podSecurityLevel baseline or privileged"
    )
    run_as_group: int | None = Field(default=None, ge=0, description="GID the container runs as; unset: the same as runAsUser")


class AppSettings(ConfigModel):
    enabled: bool = Field(default=True, description="deploy this tier")
    replica_count: int = Field(default=1, ge=0, description="replicas when autoscaling is off (prod: >= 2)")
    image: ImageSettings = Field(description="container image")
    service: ServiceSettings = Field(description="the tier's Service")
    autoscaling: AutoscalingSettings = Field(default=AutoscalingSettings(), description="HorizontalPodAutoscaler")
    resources: ResourceSettings = Field(description="container resources")
    # Liveness asks only that the server holds its port, and tolerates a minute of failures;
    # readiness asks it to serve its path. An overloaded pod is then taken out of rotation,
    # not restarted (which would move its load onto the others).
    liveness_probe: ProbeSettings = Field(
        default=ProbeSettings(type="tcpSocket", initial_delay_seconds=30, failure_threshold=6),
        description="liveness probe (restarts the container)",
    )
    readiness_probe: ProbeSettings = Field(
        default=ProbeSettings(period_seconds=5), description="readiness probe (takes the pod out of its Service)"
    )
    security_context: AppSecurityContext = Field(
        default=AppSecurityContext(), description="the container's user and group (runAsUser, runAsGroup)"
    )
    env: dict[str, EnvValue] = Field(default_factory=dict, description="plain env vars; names that look secret are refused")
    secret_env: dict[str, SecretEnvRef] = Field(
        default_factory=dict, description="env vars from existing Secrets: NAME: {secret, key}"
    )

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found = [
            *self.image.problems(f"{key}.image", production=production),
            *self.service.problems(f"{key}.service"),
            *self.autoscaling.problems(f"{key}.autoscaling"),
            *self.resources.problems(f"{key}.resources"),
        ]
        for name in [*self.env, *self.secret_env]:
            if not _ENV_NAME.match(name):
                found.append(Problem(f"{key}.env", f"{name!r} is not a valid environment variable name"))
        for name in sorted(set(self.env) & set(self.secret_env)):
            found.append(Problem(f"{key}.secretEnv.{name}", f"{name} is set in both env and secretEnv; keep one"))
        for name, value in self.env.items():
            if _looks_secret(name) and value:
                found.append(
                    Problem(
                        f"{key}.env.{name}",
                        f"{name} looks like a secret and must not be a plaintext literal; store it in a "
                        f"Kubernetes Secret and reference it with {key}.secretEnv.{name}: {{secret: NAME, key: KEY}}",
                    )
                )
        if (
            self.autoscaling.enabled
            and self.autoscaling.target_cpu_utilization_percentage
            and self.resources.requests.cpu is None
        ):
            found.append(
                Problem(f"{key}.resources.requests.cpu", "a CPU utilization target needs a CPU request to measure against")
            )
        if production:
            floor = self.autoscaling.min_replicas if self.autoscaling.enabled else self.replica_count
            if floor < 2:
                found.append(
                    Problem(
                        f"{key}.autoscaling.minReplicas" if self.autoscaling.enabled else f"{key}.replicaCount",
                        f"prod runs at least 2 replicas so one pod or node can fail without an outage (got {floor})",
                    )
                )
        return found


_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "CREDENTIAL")


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)
