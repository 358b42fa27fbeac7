"""Settings of the platform's observability: where Prometheus runs, and whether the
Prometheus Operator objects (ServiceMonitors, PrometheusRules) and dashboards are made."""

from __future__ import annotations

from pydantic import Field

from settings.base import ConfigModel, DnsLabel, Problem


class MonitoringSettings(ConfigModel):
    enabled: bool = Field(
        default=False, description="create ServiceMonitors, PrometheusRules and Grafana dashboards (Prometheus Operator CRDs)"
    )
    namespace: DnsLabel = Field(
        default="monitoring", description="namespace Prometheus scrapes from; NetworkPolicies admit it to every metrics port"
    )

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        return []
