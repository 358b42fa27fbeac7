"""Settings of the platform's observability: where Prometheus runs, and whether the
Prometheus Operator objects (ServiceMonitors, PrometheusRules) and dashboards are made.

The defaults fit kube-prometheus-stack: its Prometheus selects ServiceMonitors and
PrometheusRules labelled ``release: <its release name>`` (``kube-prometheus-stack`` when
installed under that name), and its Grafana sidecar loads every ConfigMap labelled
``grafana_dashboard: "1"``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from settings.base import ConfigModel, DnsLabel, Problem

# Prometheus durations: one or more <number><unit> terms, e.g. 30s, 1m30s, 15m.
_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# A Kubernetes label key (optional DNS-subdomain prefix and a name) and label value.
_LABEL_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^(?:[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^(?:{_LABEL_NAME})?$")


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration (``1m30s`` -> 90)."""
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


def _check_duration(text: str) -> str:
    if not _DURATION.match(text) or duration_seconds(text) <= 0:
        raise ValueError(f"{text!r} is not a Prometheus duration; use e.g. 30s, 1m, 1m30s or 15m")
    return text


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a valid Kubernetes label key")
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"{value!r} (label {key}) is not a valid Kubernetes label value")
    return labels


Duration = Annotated[str, AfterValidator(_check_duration)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class AlertSettings(ConfigModel):
    enabled: bool = Field(default=True, description="create the PrometheusRule objects (alerts) of each system")
    labels: Labels = Field(default={}, description="extra labels on every alert (e.g. team: platform), for Alertmanager routing")
    patroni_replication_lag_bytes: int | None = Field(
        default=None,
        ge=1,
        description="bytes a replica may lag behind the leader before PatroniReplicationLagHigh fires; "
        "unset: patroni.maximumLagOnFailover, the lag beyond which Patroni will not promote that replica",
    )
    hpa_at_max_for: Duration = Field(
        default="15m", description="how long an HPA must sit at its maxReplicas before HorizontalPodAutoscalerAtMax fires"
    )
    kafka_consumer_lag_messages: int = Field(
        default=0,
        ge=0,
        description="messages a consumer group may lag on a topic for 10 minutes before KafkaConsumerGroupLagHigh fires; "
        "0: no consumer-lag alert (lag depends on the application)",
    )


class DashboardSettings(ConfigModel):
    enabled: bool = Field(default=True, description="create the Grafana dashboards as ConfigMaps for the Grafana sidecar")
    label: str = Field(
        default="grafana_dashboard", description="label key the Grafana sidecar looks for (grafana.sidecar.dashboards.label)"
    )
    label_value: str = Field(default="1", description="value of that label (grafana.sidecar.dashboards.labelValue)")
    namespace: DnsLabel | None = Field(
        default=None,
        description="namespace of the dashboard ConfigMaps; unset: the stack's namespace (kube-prometheus-stack's "
        "sidecar searches all namespaces); the namespace must already exist",
    )
    annotations: dict[str, str] = Field(
        default={}, description="extra annotations on the dashboard ConfigMaps (e.g. the sidecar's folder annotation)"
    )


class MonitoringSettings(ConfigModel):
    enabled: bool = Field(
        default=False, description="create ServiceMonitors, PrometheusRules and Grafana dashboards (Prometheus Operator CRDs)"
    )
    namespace: DnsLabel = Field(
        default="monitoring", description="namespace Prometheus scrapes from; NetworkPolicies admit it to every metrics port"
    )
    selector_labels: Labels = Field(
        default={"release": "kube-prometheus-stack"},
        description="labels on every ServiceMonitor and PrometheusRule: what the Prometheus resource selects them by "
        "(serviceMonitorSelector / ruleSelector; kube-prometheus-stack: release: <its Helm release>)",
    )
    scrape_interval: Duration = Field(default="30s", description="how often Prometheus scrapes each metrics endpoint")
    scrape_timeout: Duration = Field(default="10s", description="scrape timeout; at most scrapeInterval")
    scrape_backend: bool = Field(
        default=True, description="scrape the backend's own metrics (the guide's :8082/metrics) on its http port"
    )
    backend_metrics_path: str = Field(default="/metrics", pattern=r"^/", description="HTTP path of the backend's metrics")
    alerts: AlertSettings = Field(default=AlertSettings(), description="the PrometheusRules")
    dashboards: DashboardSettings = Field(default=DashboardSettings(), description="the Grafana dashboards")

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found: list[Problem] = []
        if duration_seconds(self.scrape_timeout) > duration_seconds(self.scrape_interval):
            found.append(
                Problem(
                    f"{key}.scrapeTimeout",
                    f"scrapeTimeout {self.scrape_timeout} is longer than scrapeInterval {self.scrape_interval}; "
                    "Prometheus rejects that. Lower it or raise the interval",
                )
            )
        if not self.selector_labels:
            found.append(
                Problem(
                    f"{key}.selectorLabels",
                    "is empty: a Prometheus with a serviceMonitorSelector would pick none of the ServiceMonitors; "
                    "set the labels your Prometheus selects by (kube-prometheus-stack: release: <its release name>)",
                )
            )
        if self.dashboards.enabled:
            if not _LABEL_KEY.match(self.dashboards.label):
                found.append(Problem(f"{key}.dashboards.label", f"{self.dashboards.label!r} is not a valid label key"))
            if not _LABEL_VALUE.match(self.dashboards.label_value):
                found.append(
                    Problem(f"{key}.dashboards.labelValue", f"{self.dashboards.label_value!r} is not a valid label value")
                )
        return found
