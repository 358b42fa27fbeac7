"""Settings of the application tier: backend, frontend and nginx, each an autoscaled
Deployment. Keys follow the guide's values (``backend.autoscaling.minReplicas``...)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from settings.base import ConfigModel, ImageSettings, Problem, ResourceSettings

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class ScalingPolicy(ConfigModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(ConfigModel):
    stabilization_window_seconds: int = Field(ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(min_length=1)


class ScalingBehavior(ConfigModel):
    scale_up: ScalingRules
    scale_down: ScalingRules


class AutoscalingSettings(ConfigModel):
    enabled: bool = False
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=1, ge=1)
    # Names as in the guide (and the Helm convention), so values files carry over.
    target_cpu_utilization_percentage: int | None = Field(default=70, ge=1, le=1000, alias="targetCPUUtilizationPercentage")
    target_memory_utilization_percentage: int | None = Field(default=80, ge=1, le=1000)
    behavior: ScalingBehavior | None = None

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
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int = Field(ge=1, le=65535)
    target_port: int = Field(ge=1, le=65535)
    # nginx terminates TLS too (the guide's values-prod: 443 -> 443).
    https_port: int | None = Field(default=None, ge=1, le=65535)
    https_target_port: int | None = Field(default=None, ge=1, le=65535)

    def problems(self, key: str) -> list[Problem]:
        if (self.https_port is None) != (self.https_target_port is None):
            return [Problem(f"{key}.httpsPort", "set httpsPort and httpsTargetPort together, or neither")]
        if self.https_port is not None and self.https_port == self.port:
            return [Problem(f"{key}.httpsPort", f"httpsPort {self.https_port} equals port; use a different port")]
        return []


class ProbeSettings(ConfigModel):
    path: str = Field(default="/health", pattern=r"^/")
    initial_delay_seconds: int = Field(default=10, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=3, ge=1)
    failure_threshold: int = Field(default=3, ge=1)


class SecretEnvRef(ConfigModel):
    """An env var taken from an existing Kubernetes Secret (never a literal)."""

    secret: str = Field(min_length=1)
    key: str = Field(min_length=1)


class AppSettings(ConfigModel):
    enabled: bool = True
    replica_count: int = Field(default=1, ge=0)
    image: ImageSettings
    service: ServiceSettings
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    resources: ResourceSettings
    liveness_probe: ProbeSettings = ProbeSettings(initial_delay_seconds=30)
    readiness_probe: ProbeSettings = ProbeSettings(period_seconds=5)
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretEnvRef] = Field(default_factory=dict)

    def problems(self, key: str, *, production: bool) -> list[Problem]:
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
        if production and self.enabled:
            floor = self.autoscaling.min_replicas if self.autoscaling.enabled else self.replica_count
            if floor < 2:
                found.append(
                    Problem(
                        f"{key}.autoscaling.minReplicas" if self.autoscaling.enabled else f"{key}.replicaCount",
                        f"prod runs at least 2 replicas so one pod or node can fail without an outage (got {floor})",
                    )
                )
        return found

    @property
    def has_hpa(self) -> bool:
        return self.enabled and self.autoscaling.enabled


_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "CREDENTIAL")


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)
