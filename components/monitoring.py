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
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as shapes
from components.kafka_kraft import EXPORTER_PORT as KAFKA_EXPORTER_PORT
from components.kafka_kraft import kafka_roles
from components.postgres_ha import RESTAPI_PORT, PatroniNames
from components.redis_cluster import EXPORTER_PORT as REDIS_EXPORTER_PORT
from settings import PlatformSettings

FILES = Path(__file__).parent / "files" / "dashboards"

API_VERSION = "monitoring.coreos.com/v1"
REDIS_CLUSTER_SLOTS = 16384
GRAFANA_UID_MAX = 40  # Grafana refuses longer dashboard uids


@dataclass(frozen=True)
class MetricsEndpoint:
    """One metrics endpoint of the platform, as a Service port Prometheus scrapes."""

    system: str  # "patroni", "redis", "kafka", "backend"
    service: str  # the Service whose endpoints are the targets (also Prometheus' job label)
    selector: dict[str, str]  # labels that select that Service
    port_name: str  # the Service port's name
    port: int  # the container port behind it
    path: str = "/metrics"


def metrics_endpoints(platform: PlatformSettings) -> list[MetricsEndpoint]:
    """The guide's metrics endpoints of the systems that are enabled (with their exporter)."""
    release = platform.release_name
    endpoints = []
    if platform.patroni.enabled:
        endpoints.append(
            MetricsEndpoint(
                "patroni",
                PatroniNames(release).headless_service,
                shapes.selector_labels(release, "patroni"),
                "patroni",
                RESTAPI_PORT,
            )
        )
    if platform.redis_cluster.enabled and platform.redis_cluster.exporter.enabled:
        endpoints.append(
            MetricsEndpoint(
                "redis",
                f"{release}-redis-cluster-metrics",
                shapes.selector_labels(release, "redis-cluster"),
                "http-metrics",
                REDIS_EXPORTER_PORT,
            )
        )
    if platform.kafka.enabled and platform.kafka.exporter.enabled:
        endpoints.append(
            MetricsEndpoint(
                "kafka",
                f"{release}-kafka-exporter",
                shapes.selector_labels(release, "kafka-exporter"),
                "metrics",
                KAFKA_EXPORTER_PORT,
            )
        )
    if platform.backend.enabled and platform.monitoring.scrape_backend:
        endpoints.append(
            MetricsEndpoint(
                "backend",
                f"{release}-backend",
                shapes.selector_labels(release, "backend"),
                "http",
                platform.backend.service.target_port,
                platform.monitoring.backend_metrics_path,
            )
        )
    return endpoints


@dataclass(frozen=True)
class MonitoringArgs:
    settings: PlatformSettings


class Monitoring(pulumi.ComponentResource):
    """ServiceMonitors, PrometheusRules and Grafana dashboards of the platform."""

    service_monitors: dict[str, k8s.apiextensions.CustomResource]
    prometheus_rules: dict[str, k8s.apiextensions.CustomResource]
    dashboards: dict[str, k8s.core.v1.ConfigMap]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:Monitoring", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform = args.settings
        monitoring = platform.monitoring
        release, namespace = platform.release_name, platform.namespace
        endpoints = metrics_endpoints(platform)

        self.service_monitors = {}
        for endpoint in endpoints:
            self.service_monitors[endpoint.system] = k8s.apiextensions.CustomResource(
                f"{name}-{endpoint.system}-service-monitor",
                api_version=API_VERSION,
                kind="ServiceMonitor",
                metadata=shapes.metadata(
                    endpoint.service, namespace, _labels(platform, endpoint.system) | dict(monitoring.selector_labels)
                ),
                spec=_service_monitor_spec(platform, endpoint),
                opts=child,
            )

        self.prometheus_rules = {}
        if monitoring.alerts.enabled:
            for system, rules in alert_rules(platform, endpoints).items():
                if not rules:
                    continue
                self.prometheus_rules[system] = k8s.apiextensions.CustomResource(
                    f"{name}-{system}-rules",
                    api_version=API_VERSION,
                    kind="PrometheusRule",
                    metadata=shapes.metadata(
                        f"{release}-{system}-alerts", namespace, _labels(platform, system) | dict(monitoring.selector_labels)
                    ),
                    spec={"groups": [{"name": f"{namespace}.{release}.{system}", "rules": rules}]},
                    opts=child,
                )

        self.dashboards = {}
        if monitoring.dashboards.enabled:
            board_settings = monitoring.dashboards
            for system, text in render_dashboards(platform, endpoints).items():
                self.dashboards[system] = k8s.core.v1.ConfigMap(
                    f"{name}-{system}-dashboard",
                    metadata=shapes.metadata(
                        f"{release}-{system}-dashboard",
                        board_settings.namespace or namespace,
                        _labels(platform, system) | {board_settings.label: board_settings.label_value},
                        board_settings.annotations or None,
                    ),
                    # The sidecar writes every dashboard into one directory: the file name
                    # must differ between stacks (dev and prod may share a Grafana).
                    data={f"{_dashboard_uid(namespace, system)}.json": text},
                    opts=child,
                )

        self.register_outputs({})


# --- alerts ----------------------------------------------------------------------------


def alert_rules(platform: PlatformSettings, endpoints: list[MetricsEndpoint]) -> dict[str, list[dict[str, Any]]]:
    """The alerting rules of each system, by system ("patroni", "redis", "kafka", "apps")."""
    jobs = {endpoint.system: endpoint.service for endpoint in endpoints}
    extra = dict(platform.monitoring.alerts.labels)
    rules: dict[str, list[dict[str, Any]]] = {}
    if "patroni" in jobs:
        rules["patroni"] = _patroni_rules(platform, jobs["patroni"])
    if "redis" in jobs:
        rules["redis"] = _redis_rules(platform, jobs["redis"])
    if "kafka" in jobs:
        rules["kafka"] = _kafka_rules(platform, jobs["kafka"])
    rules["apps"] = _apps_rules(platform, jobs.get("backend"))
    for system, group in rules.items():
        for rule in group:
            rule["labels"] = {**extra, **rule["labels"], "system": system}
    return rules


def _alert(name: str, expr: str, *, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def _patroni_rules(platform: PlatformSettings, job: str) -> list[dict[str, Any]]:
    namespace = platform.namespace
    scope = PatroniNames(platform.release_name).scope
    sel = f'namespace="{namespace}", job="{job}", scope="{scope}"'
    members = platform.patroni.replica_count
    lag = platform.monitoring.alerts.patroni_replication_lag_bytes or platform.patroni.maximum_lag_on_failover
    patronictl = f"kubectl exec -n {namespace} {scope}-0 -- patronictl list"
    rules = [
        _alert(
            "PatroniNoLeader",
            f"(max(patroni_primary{{{sel}}}) or vector(0)) < 1",
            for_="1m",
            severity="critical",
            summary=f"PostgreSQL cluster {scope} has no leader",
            description=f"No member of {scope} in {namespace} has held the leader lock for 1 minute (or no member "
            f"is scraped): writes to the primary Service fail. Check `{patronictl}` and the members' logs.",
        ),
        _alert(
            "PatroniMultipleLeaders",
            f"sum(patroni_primary{{{sel}}}) > 1",
            for_="1m",
            severity="critical",
            summary=f"PostgreSQL cluster {scope} reports {{{{ $value }}}} leaders",
            description=f"More than one member of {scope} says it is the primary: a split brain. Check `{patronictl}` "
            "at once; the primary Service may send writes to either.",
        ),
        _alert(
            "PatroniMemberDown",
            f'patroni_postgres_running{{{sel}}} == 0 or up{{namespace="{namespace}", job="{job}"}} == 0',
            for_="2m",
            severity="warning",
            summary="Patroni member {{ $labels.pod }} is down",
            description="PostgreSQL is not running under Patroni on {{ $labels.pod }}, or its REST API (:8008) does "
            f"not answer, for 2 minutes. The cluster has one member fewer to fail over to. Check `{patronictl}`.",
        ),
        _alert(
            "PatroniMembersMissing",
            f"(count(patroni_postgres_running{{{sel}}} == 1) or vector(0)) < {members}",
            for_="5m",
            severity="warning",
            summary=f"Only {{{{ $value }}}} of {members} PostgreSQL members of {scope} are running",
            description=f"patroni.replicaCount is {members}, but fewer members have run PostgreSQL for 5 minutes "
            f"(a pod pending, crash-looping or not scraped). Check `kubectl get pods -n {namespace} -l "
            f"app.kubernetes.io/name=patroni` and `{patronictl}`.",
        ),
    ]
    if members >= 2:
        rules += [
            _alert(
                "PatroniReplicationLagHigh",
                f"(max by (namespace, scope) (patroni_xlog_location{{{sel}}}) - on (namespace, scope) group_right () "
                f"patroni_xlog_replayed_location{{{sel}}}) and on (namespace, scope, name) (patroni_replica{{{sel}}} == 1) "
                f"> {lag}",
                for_="5m",
                severity="warning",
                summary="Replica {{ $labels.name }} lags {{ $value | humanize1024 }}B behind the leader",
                description=f"Replica {{{{ $labels.name }}}} of {scope} has replayed WAL more than {lag} bytes behind "
                "the leader for 5 minutes. Beyond patroni.maximumLagOnFailover "
                f"({platform.patroni.maximum_lag_on_failover} bytes) Patroni will not promote it in a failover.",
            ),
            _alert(
                "PatroniReplicaNotStreaming",
                f"(patroni_replica{{{sel}}} == 1) and on (namespace, scope, name) (patroni_postgres_streaming{{{sel}}} == 0)",
                for_="5m",
                severity="warning",
                summary="Replica {{ $labels.name }} is not streaming from the leader",
                description="PostgreSQL on {{ $labels.name }} has not streamed WAL from the leader for 5 minutes; it "
                "falls behind until it reconnects. Check its log for replication connection errors.",
            ),
        ]
    return rules


def _redis_rules(platform: PlatformSettings, job: str) -> list[dict[str, Any]]:
    namespace = platform.namespace
    redis = platform.redis_cluster
    sel = f'namespace="{namespace}", job="{job}"'
    cluster = f"{platform.release_name}-redis-cluster"
    check = f"kubectl exec -n {namespace} {cluster}-0 -c redis -- redis-cli cluster info"
    return [
        _alert(
            "RedisDown",
            f"redis_up{{{sel}}} == 0 or up{{{sel}}} == 0",
            for_="1m",
            severity="critical",
            summary="Redis node {{ $labels.pod }} is down",
            description="redis_exporter on {{ $labels.pod }} cannot reach its Redis server, or the exporter itself "
            "is not scraped, for 1 minute.",
        ),
        _alert(
            "RedisClusterStateNotOk",
            f"redis_cluster_state{{{sel}}} == 0",
            for_="1m",
            severity="critical",
            summary="Redis node {{ $labels.pod }} reports cluster_state:fail",
            description="{{ $labels.pod }} has reported cluster_state:fail for 1 minute: it refuses queries "
            f"(slots uncovered, or it is cut off from the majority of masters). Check `{check}`.",
        ),
        _alert(
            "RedisClusterSlotsNotCovered",
            f"redis_cluster_slots_ok{{{sel}}} < {REDIS_CLUSTER_SLOTS}",
            for_="2m",
            severity="critical",
            summary="Only {{ $value }} of 16384 slots are served by a healthy master",
            description=f"{{{{ $labels.pod }}}} sees fewer than {REDIS_CLUSTER_SLOTS} slots assigned to masters that "
            "are not failing, for 2 minutes: keys in the other slots cannot be read or written. "
            f"Check `{check}` and `redis-cli --cluster check`.",
        ),
        _alert(
            "RedisClusterNodesMissing",
            f"(count(redis_up{{{sel}}} == 1) or vector(0)) < {redis.node_count}",
            for_="5m",
            severity="warning",
            summary=f"Only {{{{ $value }}}} of {redis.node_count} Redis nodes are up",
            description=f"redisCluster asks for {redis.master_count} masters with {redis.replicas_per_master} "
            f"replica(s) each ({redis.node_count} nodes); fewer have answered for 5 minutes, so a further failure may "
            "leave slots without a master.",
        ),
        _alert(
            "RedisMemoryHigh",
            f"redis_memory_used_bytes{{{sel}}} / (redis_memory_max_bytes{{{sel}}} > 0) > 0.9",
            for_="10m",
            severity="warning",
            summary="Redis node {{ $labels.pod }} uses {{ $value | humanizePercentage }} of its maxmemory",
            description="{{ $labels.pod }} has used over 90% of maxmemory for 10 minutes: writes are about to be "
            "refused or keys evicted, depending on maxmemory-policy.",
        ),
    ]


def _kafka_rules(platform: PlatformSettings, job: str) -> list[dict[str, Any]]:
    namespace = platform.namespace
    kafka = platform.kafka
    sel = f'namespace="{namespace}", job="{job}"'
    alerts = platform.monitoring.alerts
    voters = next(role for role in kafka_roles(platform.release_name, kafka) if role.votes)
    voter_pods = "|".join(f"{voters.name}-{ordinal}" for ordinal in range(kafka.controller_count))
    majority = kafka.controller_count // 2 + 1
    min_isr = kafka.config.min_insync_replicas
    topics = (
        f"kubectl exec -n {namespace} {platform.release_name}-kafka-0 -- "
        "kafka-topics.sh --bootstrap-server localhost:9092 --describe"
    )
    rules = [
        _alert(
            "KafkaMetricsAbsent",
            f"absent(kafka_brokers{{{sel}}})",
            for_="5m",
            severity="warning",
            summary="kafka-exporter reports no Kafka metrics",
            description=f"No kafka_brokers series from {job} for 5 minutes: kafka-exporter is down or cannot reach "
            "the brokers, and every other Kafka alert is blind.",
        ),
        _alert(
            "KafkaBrokersMissing",
            f"kafka_brokers{{{sel}}} < {kafka.replica_count}",
            for_="2m",
            severity="warning",
            summary=f"Only {{{{ $value }}}} of {kafka.replica_count} Kafka brokers are in the cluster metadata",
            description=f"kafka.replicaCount is {kafka.replica_count}, but the cluster metadata has listed fewer live "
            "brokers for 2 minutes (a broker down or fenced by the controller).",
        ),
        _alert(
            "KafkaOfflinePartitions",
            f"count by (namespace, topic) (kafka_topic_partition_leader_is_preferred{{{sel}}} unless on (namespace, topic, "
            f"partition) kafka_topic_partition_leader{{{sel}}}) > 0",
            for_="1m",
            severity="critical",
            summary="{{ $value }} partitions of topic {{ $labels.topic }} have no leader",
            description="kafka-exporter finds no leader for {{ $value }} partitions of {{ $labels.topic }} for 1 "
            f"minute: they can be neither read nor written. Check `{topics}`.",
        ),
        _alert(
            "KafkaUnderReplicatedPartitions",
            f"sum by (namespace, topic) (kafka_topic_partition_under_replicated_partition{{{sel}}}) > 0",
            for_="5m",
            severity="warning",
            summary="{{ $value }} partitions of topic {{ $labels.topic }} are under-replicated",
            description="Some replicas of {{ $labels.topic }} have been out of the in-sync set for 5 minutes (a "
            "broker down or too slow to follow).",
        ),
        _alert(
            "KafkaPartitionsUnderMinIsr",
            f"count by (namespace, topic) ((kafka_topic_partition_in_sync_replica{{{sel}}} < {min_isr}) and on (namespace, "
            f"topic, partition) (kafka_topic_partition_replicas{{{sel}}} >= {min_isr})) > 0",
            for_="1m",
            severity="critical",
            summary="{{ $value }} partitions of topic {{ $labels.topic }} have fewer in-sync replicas than min.insync.replicas",
            description=f"With fewer than {min_isr} in-sync replicas (kafka.config.minInsyncReplicas), producers "
            "using acks=all get NotEnoughReplicas errors on these partitions.",
        ),
        _alert(
            "KafkaControllerQuorumLost",
            f'(sum(kube_pod_status_ready{{namespace="{namespace}", pod=~"{voter_pods}", condition="true"}}) or vector(0)) '
            f"< {majority}",
            for_="1m",
            severity="critical",
            summary=f"Only {{{{ $value }}}} of {kafka.controller_count} KRaft voters are ready: no active controller",
            description="Fewer than a majority of the KRaft controller quorum have been ready for 1 minute, so no "
            "controller can be elected: topic changes, leader elections and broker registration stop. kafka-exporter "
            "exports no controller metric (ActiveControllerCount is a JMX metric), so this alert counts the ready "
            f"voter pods ({voter_pods}) from kube-state-metrics.",
        ),
    ]
    if alerts.kafka_consumer_lag_messages > 0:
        rules.append(
            _alert(
                "KafkaConsumerGroupLagHigh",
                f"sum by (namespace, consumergroup, topic) (kafka_consumergroup_lag{{{sel}}}) "
                f"> {alerts.kafka_consumer_lag_messages}",
                for_="10m",
                severity="warning",
                summary="Consumer group {{ $labels.consumergroup }} lags {{ $value }} messages on {{ $labels.topic }}",
                description=f"The group has been more than {alerts.kafka_consumer_lag_messages} messages behind the "
                "end of the topic for 10 minutes (monitoring.alerts.kafkaConsumerLagMessages).",
            )
        )
    return rules


def _apps_rules(platform: PlatformSettings, backend_job: str | None) -> list[dict[str, Any]]:
    namespace = platform.namespace
    rules = []
    hpas = [
        f"{platform.release_name}-{app}-hpa"
        for app, settings in platform.apps.items()
        if settings.enabled
        and settings.autoscaling.enabled
        and settings.autoscaling.min_replicas < settings.autoscaling.max_replicas
    ]
    if hpas:
        sel = f'namespace="{namespace}", horizontalpodautoscaler=~"{"|".join(hpas)}"'
        wait = platform.monitoring.alerts.hpa_at_max_for
        rules.append(
            _alert(
                "HorizontalPodAutoscalerAtMax",
                f"kube_horizontalpodautoscaler_status_current_replicas{{{sel}}} >= on (namespace, horizontalpodautoscaler) "
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{sel}}}",
                for_=wait,
                severity="warning",
                summary="HPA {{ $labels.horizontalpodautoscaler }} has run at its maximum of {{ $value }} replicas "
                f"for {wait}",
                description="The autoscaler wants at least as many pods as maxReplicas allows and has stayed there for "
                f"{wait}: the tier cannot absorb more load. Raise <app>.autoscaling.maxReplicas (and check the cluster "
                "has room) or find what drives the load.",
            )
        )
    if backend_job is not None:
        rules.append(
            _alert(
                "BackendMetricsDown",
                f'up{{namespace="{namespace}", job="{backend_job}"}} == 0',
                for_="5m",
                severity="warning",
                summary="Backend pod {{ $labels.pod }} does not serve its metrics",
                description=f"Prometheus has failed to scrape {platform.monitoring.backend_metrics_path} on "
                "{{ $labels.pod }} for 5 minutes: the pod is overloaded, hung or not serving HTTP.",
            )
        )
    return rules


# --- dashboards ------------------------------------------------------------------------

# System -> its dashboard under components/files/dashboards/.
DASHBOARD_FILES = {
    "patroni": "patroni.json",
    "redis": "redis-cluster.json",
    "kafka": "kafka.json",
    "autoscaling": "autoscaling.json",
}


def render_dashboards(platform: PlatformSettings, endpoints: list[MetricsEndpoint]) -> dict[str, str]:
    """The dashboards of the systems that are enabled, as the JSON text Grafana loads."""
    jobs = {endpoint.system: endpoint.service for endpoint in endpoints}
    release, namespace = platform.release_name, platform.namespace
    boards: dict[str, str] = {}
    for system, variables in (
        ("patroni", {"job": jobs.get("patroni")}),
        ("redis", {"job": jobs.get("redis")}),
        ("kafka", {"job": jobs.get("kafka")}),
        ("autoscaling", {"backend_job": jobs.get("backend", f"{release}-backend")}),
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


def _labels(platform: PlatformSettings, system: str) -> dict[str, str]:
    return shapes.common_labels(platform.release_name, f"{system}-monitoring", "monitoring")


def _service_monitor_spec(platform: PlatformSettings, endpoint: MetricsEndpoint) -> shapes.Obj:
    monitoring = platform.monitoring
    return {
        "selector": {"matchLabels": dict(endpoint.selector)},
        "namespaceSelector": {"matchNames": [platform.namespace]},
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
