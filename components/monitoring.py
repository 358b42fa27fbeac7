"""Monitoring: what Prometheus Operator and Grafana need to watch the platform.

The metrics endpoints are the guide's, served by the components themselves:

- Patroni's REST API ``:8008/metrics`` (port ``patroni`` of the headless Service:
  every member, ready or not, is a target);
- redis_exporter ``:9121`` (the ``metrics`` sidecar of every Redis node, Service
  ``<release>-redis-cluster-metrics``, port ``http-metrics``);
- kafka-exporter ``:9308`` (Service ``<release>-kafka-exporter``, port ``metrics``);
- the backend's ``:8082/metrics`` (port ``http`` of the backend Service).

With ``monitoring.enabled`` this component adds one ServiceMonitor per endpoint, one
PrometheusRule per system (alerts on the exporters' own metric names, and on
kube-state-metrics for HPAs and the Kafka controller quorum) and one Grafana dashboard
ConfigMap per system (components/files/dashboards/), labelled for the Grafana sidecar.
The Prometheus Operator CRDs (monitoring.coreos.com/v1) must be installed in the
cluster, e.g. by kube-prometheus-stack.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as shapes
from components import kube_objects as kube
from components.alert_rules import Rule
from components.wiring import MetricsEndpoint
from settings.monitoring import MonitoringSettings

FILES = Path(__file__).parent / "files" / "dashboards"

API_VERSION = "monitoring.coreos.com/v1"
GRAFANA_UID_MAX = 40  # Grafana refuses longer dashboard uids


@dataclass(frozen=True)
class MonitoringArgs:
    release: str
    namespace: str
    settings: MonitoringSettings
    endpoints: list[MetricsEndpoint]  # what to scrape: one ServiceMonitor each
    alert_groups: dict[str, list[Rule]]  # system -> its rules: one PrometheusRule each (none when empty)
    backend_service: str  # the backend's Service: the autoscaling dashboard's job, scraped or not


class Monitoring(pulumi.ComponentResource):
    """ServiceMonitors, PrometheusRules and Grafana dashboards of the platform."""

    service_monitors: dict[str, k8s.apiextensions.CustomResource]
    prometheus_rules: dict[str, k8s.apiextensions.CustomResource]
    dashboards: dict[str, kube.ConfigMap]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:Monitoring", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        monitoring = args.settings
        release, namespace = args.release, args.namespace

        self.service_monitors = {}
        for endpoint in args.endpoints:
            self.service_monitors[endpoint.system] = k8s.apiextensions.CustomResource(
                f"{name}-{endpoint.system}-service-monitor",
                api_version=API_VERSION,
                kind="ServiceMonitor",
                metadata=shapes.metadata(
                    endpoint.service, namespace, _labels(release, endpoint.system) | dict(monitoring.selector_labels)
                ),
                spec=_service_monitor_spec(monitoring, namespace, endpoint),
                opts=child,
            )

        self.prometheus_rules = {}
        if monitoring.alerts.enabled:
            for system, rules in args.alert_groups.items():
                if not rules:
                    continue
                self.prometheus_rules[system] = k8s.apiextensions.CustomResource(
                    f"{name}-{system}-rules",
                    api_version=API_VERSION,
                    kind="PrometheusRule",
                    metadata=shapes.metadata(
                        f"{release}-{system}-alerts", namespace, _labels(release, system) | dict(monitoring.selector_labels)
                    ),
                    spec={"groups": [{"name": f"{namespace}.{release}.{system}", "rules": rules}]},
                    opts=child,
                )

        self.dashboards = {}
        if monitoring.dashboards.enabled:
            board_settings = monitoring.dashboards
            jobs = {endpoint.system: endpoint.service for endpoint in args.endpoints}
            for system, text in render_dashboards(release, namespace, jobs, args.backend_service).items():
                self.dashboards[system] = kube.ConfigMap(
                    f"{name}-{system}-dashboard",
                    metadata=shapes.metadata(
                        f"{release}-{system}-dashboard",
                        board_settings.namespace or namespace,
                        _labels(release, system) | {board_settings.label: board_settings.label_value},
                        board_settings.annotations or None,
                    ),
                    # The sidecar writes every dashboard into one directory: the file name
                    # must differ between stacks (dev and prod may share a Grafana).
                    data={f"{_dashboard_uid(namespace, system)}.json": text},
                    opts=child,
                )

        self.register_outputs({})


# --- dashboards ------------------------------------------------------------------------

# System -> its dashboard under components/files/dashboards/.
DASHBOARD_FILES = {
    "patroni": "patroni.json",
    "redis": "redis-cluster.json",
    "kafka": "kafka.json",
    "autoscaling": "autoscaling.json",
}


def render_dashboards(release: str, namespace: str, jobs: dict[str, str], backend_service: str) -> dict[str, str]:
    """The dashboards of the systems Prometheus scrapes (``jobs``: system -> its job), as
    the JSON text Grafana loads; the autoscaling one always (kube-state-metrics)."""
    boards: dict[str, str] = {}
    for system, variables in (
        ("patroni", {"job": jobs.get("patroni")}),
        ("redis", {"job": jobs.get("redis")}),
        ("kafka", {"job": jobs.get("kafka")}),
        ("autoscaling", {"backend_job": jobs.get("backend", backend_service)}),
    ):
        if any(value is None for value in variables.values()):
            continue  # the system (or its exporter) is off: nothing to show
        boards[system] = render_dashboard(
            (FILES / DASHBOARD_FILES[system]).read_text(),
            uid=_dashboard_uid(namespace, system),
            title_suffix=f"({release}, {namespace})",
            variables={"namespace": namespace, **{key: value for key, value in variables.items() if value}},
        )
    return boards


def render_dashboard(text: str, *, uid: str, title_suffix: str, variables: dict[str, str]) -> str:
    """A dashboard file with its uid, title and the values of its variables set."""
    board = json.loads(text)
    board["id"] = None
    board["uid"] = uid
    board["title"] = f"{board['title']} {title_suffix}"
    known = {variable["name"]: variable for variable in board["templating"]["list"]}
    for name, value in variables.items():
        if name not in known:
            raise ValueError(f"dashboard {board['title']!r} has no variable {name!r}")
        variable = known[name]
        variable["query"] = value
        variable["current"] = {"selected": False, "text": value, "value": value}
        variable["options"] = [{"selected": True, "text": value, "value": value}]
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def _dashboard_uid(namespace: str, system: str) -> str:
    uid = f"{namespace}-{system}"
    if len(uid) > GRAFANA_UID_MAX:
        digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
        uid = f"{uid[: GRAFANA_UID_MAX - 9]}-{digest}"
    return uid


# --- private builders ----------------------------------------------------------------


def _labels(release: str, system: str) -> dict[str, str]:
    return shapes.common_labels(release, f"{system}-monitoring", "monitoring")


def _service_monitor_spec(monitoring: MonitoringSettings, namespace: str, endpoint: MetricsEndpoint) -> shapes.Obj:
    return {
        "selector": {"matchLabels": dict(endpoint.selector)},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": endpoint.port_name,
                "path": endpoint.path,
                "scheme": "http",
                "interval": monitoring.scrape_interval,
                "scrapeTimeout": monitoring.scrape_timeout,
                # The selector also matches the system's other Services (client,
                # headless...); keep exactly the metrics Service, whatever ports they get.
                "relabelings": [
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_service_name"],
                        "regex": endpoint.service,
                    }
                ],
            }
        ],
    }
