"""Monitoring: the guide's metrics endpoints exist, and with monitoring.enabled the
ServiceMonitors scrape exactly them, the alerts and dashboards query only metric names
the deployed exporters produce, and promtool accepts the rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.conftest import ROOT, Objects, objects, render_stack

ON = "monitoring.enabled=true"
CUSTOM_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")

# The guide's metrics endpoints: system -> the container port Prometheus must reach.
GUIDE_PORTS = {"patroni": 8008, "redis": 9121, "kafka": 9308, "backend": 8082}

# --- metric names each source really exports ---------------------------------------
# Patroni 4.1.5 (the pinned image), patroni/api.py RestApiHandler.do_GET_metrics:
# every metric it writes, labels scope and name.
PATRONI = frozenset(
    {
        "patroni_version",
        "patroni_postgres_running",
        "patroni_postmaster_start_time",
        "patroni_primary",
        "patroni_xlog_location",
        "patroni_standby_leader",
        "patroni_replica",
        "patroni_sync_standby",
        "patroni_quorum_standby",
        "patroni_xlog_received_location",
        "patroni_xlog_replayed_location",
        "patroni_xlog_replayed_timestamp",
        "patroni_xlog_paused",
        "patroni_postgres_streaming",
        "patroni_postgres_in_archive_recovery",
        "patroni_postgres_server_version",
        "patroni_cluster_unlocked",
        "patroni_failsafe_mode_is_active",
        "patroni_postgres_timeline",
        "patroni_dcs_last_seen",
        "patroni_pending_restart",
        "patroni_is_paused",
    }
)
# oliver006/redis_exporter v1.62.0 (the pinned image): exporter/exporter.go's INFO maps
# (used_memory -> memory_used_bytes, maxmemory -> memory_max_bytes, total_commands_processed
# -> commands_processed_total, keyspace_hits/misses -> *_total, evicted_keys -> *_total),
# the db_keys, instance_info and up metrics, and every CLUSTER INFO field (cluster_state
# "ok" -> 1, cluster_slots_*) exported as redis_<field> when cluster_enabled:1
# (exporter/metrics.go includeMetric, exporter/info.go extractClusterInfoMetrics).
REDIS_EXPORTER = frozenset(
    {
        "redis_up",
        "redis_instance_info",
        "redis_connected_clients",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_commands_processed_total",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_evicted_keys_total",
        "redis_db_keys",
        "redis_connected_slaves",
        "redis_master_link_up",
        "redis_cluster_state",
        "redis_cluster_slots_assigned",
        "redis_cluster_slots_ok",
        "redis_cluster_slots_pfail",
        "redis_cluster_slots_fail",
        "redis_cluster_known_nodes",
        "redis_cluster_size",
    }
)
# danielqsj/kafka_exporter v1.9.0 (the pinned image), kafka_exporter.go's descriptors.
# kafka_topic_partition_leader is left out for a partition without a leader (the offline
# alert relies on that); kafka_topic_partition_leader_is_preferred is always written.
KAFKA_EXPORTER = frozenset(
    {
        "kafka_brokers",
        "kafka_broker_info",
        "kafka_topic_partitions",
        "kafka_topic_partition_current_offset",
        "kafka_topic_partition_oldest_offset",
        "kafka_topic_partition_leader",
        "kafka_topic_partition_replicas",
        "kafka_topic_partition_in_sync_replica",
        "kafka_topic_partition_leader_is_preferred",
        "kafka_topic_partition_under_replicated_partition",
        "kafka_consumergroup_current_offset",
        "kafka_consumergroup_current_offset_sum",
        "kafka_consumergroup_lag",
        "kafka_consumergroup_lag_sum",
        "kafka_consumergroup_members",
    }
)
# kube-state-metrics v2 (kube-prometheus-stack), docs/metrics/workload/*-metrics.md.
KUBE_STATE_METRICS = frozenset(
    {
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_pod_status_ready",
        "kube_deployment_status_replicas_available",
        "kube_statefulset_status_replicas_ready",
    }
)
# The kubelet's cAdvisor endpoint (scraped by kube-prometheus-stack).
CADVISOR = frozenset({"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"})
# Prometheus' own per-target series.
PROMETHEUS = frozenset({"up"})

# What each system's alerts and dashboard may query.
ALLOWED = {
    "patroni": PATRONI | PROMETHEUS,
    "redis": REDIS_EXPORTER | PROMETHEUS,
    "kafka": KAFKA_EXPORTER | KUBE_STATE_METRICS,
    "apps": KUBE_STATE_METRICS | CADVISOR | PROMETHEUS,
    "autoscaling": KUBE_STATE_METRICS | CADVISOR | PROMETHEUS,
}

REQUIRED_ALERTS = {
    "dev": {
        "PatroniNoLeader",
        "PatroniMemberDown",
        "RedisDown",
        "RedisClusterStateNotOk",
        "RedisClusterSlotsNotCovered",
        "KafkaOfflinePartitions",
        "KafkaUnderReplicatedPartitions",
        "KafkaControllerQuorumLost",
        "KafkaBrokersMissing",
    },
}
REQUIRED_ALERTS["prod"] = REQUIRED_ALERTS["dev"] | {"PatroniReplicationLagHigh", "HorizontalPodAutoscalerAtMax"}


# --- helpers -----------------------------------------------------------------------------


def system_of(obj: dict[str, Any]) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/name"].removesuffix("-monitoring")


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects, from the parsed expression."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            walk(node.expr)
        else:
            assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral), type(node)

    walk(promql_parser.parse(expr))
    return names


def alert_rules(rendered: Objects) -> list[tuple[str, dict[str, Any]]]:
    return [
        (system_of(rule), entry)
        for rule in rendered.of_kind("PrometheusRule")
        for group in rule["spec"]["groups"]
        for entry in group["rules"]
    ]


def dashboards(rendered: Objects) -> dict[str, dict[str, Any]]:
    found = {}
    for config_map in rendered.of_kind("ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            ((_, text),) = config_map["data"].items()
            found[system_of(config_map)] = json.loads(text)
    return found


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    """The panels' queries with Grafana's variables replaced by their rendered values."""
    values = {variable["name"]: variable["query"] for variable in board["templating"]["list"]}
    values["__rate_interval"] = "5m"
    exprs = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name in re.findall(r"\$(\w+)", expr):
                assert values.get(name), f"{board['title']}: ${name} has no value"
            exprs.append(re.sub(r"\$(\w+)", lambda match: values[match[1]], expr))
    return exprs


def selected_services(rendered: Objects, monitor: dict[str, Any]) -> list[dict[str, Any]]:
    spec = monitor["spec"]
    namespaces = spec["namespaceSelector"]["matchNames"]
    wanted = spec["selector"]["matchLabels"]
    keep = [
        relabel["regex"]
        for endpoint in spec["endpoints"]
        for relabel in endpoint.get("relabelings", [])
        if relabel["action"] == "keep" and relabel["sourceLabels"] == ["__meta_kubernetes_service_name"]
    ]
    services = [
        service
        for service in rendered.of_kind("Service")
        if service["metadata"]["namespace"] in namespaces
        and all(service["metadata"]["labels"].get(key) == value for key, value in wanted.items())
    ]
    return [service for service in services if all(re.fullmatch(regex, service["metadata"]["name"]) for regex in keep)]


def container_port(rendered: Objects, service: dict[str, Any], port_name: str) -> int:
    """The container port number behind a named Service port, in the pods it selects."""
    (port,) = [port for port in service["spec"]["ports"] if port["name"] == port_name]
    target = port["targetPort"]
    selector = service["spec"]["selector"]
    numbers = set()
    for owner, template in rendered.pod_templates():
        if owner["kind"] == "Job" or not all(template["metadata"]["labels"].get(k) == v for k, v in selector.items()):
            continue
        for container in template["spec"]["containers"]:
            for declared in container.get("ports", []):
                if declared.get("name") == target or declared["containerPort"] == target:
                    numbers.add(declared["containerPort"])
    assert len(numbers) == 1, f"Service {service['metadata']['name']} port {port_name}: container ports {numbers}"
    return numbers.pop()


def promtool() -> str:
    cached = Path(os.environ.get("HOME", "/root")) / ".cache/ai-infra-matrix/promtool/bin/promtool"
    found = shutil.which("promtool") or (str(cached) if cached.is_file() else None)
    if found is None:
        pytest.fail("promtool is not installed; run tools/ci/install-promtool.sh")
    return found


# --- off by default -------------------------------------------------------------------


def test_disabled_renders_no_monitoring_objects(stack):
    rendered = objects(stack)
    assert not render_stack(stack).settings.monitoring.enabled
    assert [obj for obj in rendered.all if obj["kind"] in CUSTOM_KINDS] == []
    assert [cm for cm in rendered.of_kind("ConfigMap") if "grafana_dashboard" in cm["metadata"]["labels"]] == []
    assert "ai-infra:index:Monitoring" not in render_stack(stack).resource_types


# --- scrape targets ---------------------------------------------------------------------


def test_each_service_monitor_selects_one_existing_service_port(stack):
    rendered = objects(stack, ON)
    monitors = rendered.of_kind("ServiceMonitor")
    assert monitors
    namespace = render_stack(stack, ON).settings.namespace
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["namespace"] == namespace
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
        (endpoint,) = monitor["spec"]["endpoints"]
        services = selected_services(rendered, monitor)
        name = monitor["metadata"]["name"]
        assert len(services) == 1, f"ServiceMonitor {name} selects {[s['metadata']['name'] for s in services]}"
        ports = [port["name"] for port in services[0]["spec"]["ports"]]
        assert endpoint["port"] in ports, f"ServiceMonitor {name}: Service has ports {ports}, not {endpoint['port']}"
        assert endpoint["path"].startswith("/")
        assert endpoint["scheme"] == "http"


def test_every_metrics_endpoint_of_the_guide_is_scraped(stack):
    rendered = objects(stack, ON)
    scraped = {}
    for monitor in rendered.of_kind("ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        (service,) = selected_services(rendered, monitor)
        scraped[system_of(monitor)] = (container_port(rendered, service, endpoint["port"]), endpoint["path"])
    assert scraped == {system: (port, "/metrics") for system, port in GUIDE_PORTS.items()}


def test_metrics_endpoints_exist_without_monitoring(stack):
    """The ports are part of the components: Prometheus without the Operator (or a
    kubectl port-forward) finds them whether monitoring.enabled is on or not."""
    rendered = objects(stack)
    namespace = render_stack(stack).settings.namespace
    services = {
        "patroni": ("ai-infra-patroni-headless", "patroni"),
        "redis": ("ai-infra-redis-cluster-metrics", "http-metrics"),
        "kafka": ("ai-infra-kafka-exporter", "metrics"),
        "backend": ("ai-infra-backend", "http"),
    }
    for system, (name, port) in services.items():
        service = rendered.get("Service", name)
        assert service["metadata"]["namespace"] == namespace
        assert container_port(rendered, service, port) == GUIDE_PORTS[system], system


def test_patroni_members_are_scraped_before_they_are_ready():
    """A member that is down (not ready) must still be a target, or PatroniMemberDown
    could never see it: the headless Service publishes not-ready addresses."""
    rendered = objects("prod", ON)
    (service,) = selected_services(rendered, rendered.get("ServiceMonitor", "ai-infra-patroni-headless"))
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_exporter_off_means_no_scrape_alerts_or_dashboard_for_it():
    rendered = objects("prod", ON, "redisCluster.exporter.enabled=false", "kafka.exporter.enabled=false")
    assert sorted(system_of(m) for m in rendered.of_kind("ServiceMonitor")) == ["backend", "patroni"]
    assert sorted(system_of(r) for r in rendered.of_kind("PrometheusRule")) == ["apps", "patroni"]
    assert sorted(dashboards(rendered)) == ["autoscaling", "patroni"]


def test_backend_scrape_can_be_turned_off_or_moved():
    off = objects("prod", ON, "monitoring.scrapeBackend=false")
    assert "backend" not in [system_of(m) for m in off.of_kind("ServiceMonitor")]
    moved = objects("prod", ON, "monitoring.backendMetricsPath=/actuator/prometheus")
    (endpoint,) = moved.get("ServiceMonitor", "ai-infra-backend")["spec"]["endpoints"]
    assert endpoint["path"] == "/actuator/prometheus"


def test_scrape_interval_and_selector_labels_follow_settings():
    rendered = objects(
        "prod", ON, "monitoring.scrapeInterval=1m", "monitoring.scrapeTimeout=20s", "monitoring.selectorLabels={prometheus: main}"
    )
    for monitor in rendered.of_kind("ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "20s")
    for obj in rendered.of_kind("ServiceMonitor") + rendered.of_kind("PrometheusRule"):
        assert obj["metadata"]["labels"]["prometheus"] == "main"
        assert "release" not in obj["metadata"]["labels"]
    default = objects("prod", ON)
    for obj in default.of_kind("ServiceMonitor") + default.of_kind("PrometheusRule"):
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"


# --- alerts -------------------------------------------------------------------------------


def test_alerts_that_matter_exist_with_severity_summary_description_and_for(stack):
    rules = alert_rules(objects(stack, ON))
    names = [rule["alert"] for _, rule in rules]
    assert len(names) == len(set(names))
    assert REQUIRED_ALERTS[stack] <= set(names), REQUIRED_ALERTS[stack] - set(names)
    for _, rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", rule["for"]), rule["alert"]


def test_alert_expressions_query_only_metrics_the_exporters_produce(stack):
    for system, rule in alert_rules(objects(stack, ON)):
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= ALLOWED[system], f"{rule['alert']} queries {sorted(used - ALLOWED[system])}"


def test_metric_name_check_can_fail():
    assert metric_names('patroni_primary{namespace="x"} - on (name) redis_up') == {"patroni_primary", "redis_up"}
    assert not metric_names("sum(rate(redis_commandz_total[5m]))") <= ALLOWED["redis"]


def test_promtool_accepts_the_rendered_rules(stack, tmp_path):
    groups = [group for rule in objects(stack, ON).of_kind("PrometheusRule") for group in rule["spec"]["groups"]]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(group['rules']) for group in groups)} rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "A", "expr": "sum(up", "for": "1m"}]}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0


def _rule(rendered: Objects, name: str) -> dict[str, Any]:
    (rule,) = [rule for _, rule in alert_rules(rendered) if rule["alert"] == name]
    return rule


def test_replication_lag_threshold_is_the_failover_limit_unless_set():
    assert _rule(objects("prod", ON), "PatroniReplicationLagHigh")["expr"].endswith("> 1048576")
    assert _rule(objects("prod", ON, "patroni.maximumLagOnFailover=4194304"), "PatroniReplicationLagHigh")["expr"].endswith(
        "> 4194304"
    )
    lowered = objects("prod", ON, "monitoring.alerts.patroniReplicationLagBytes=65536")
    assert _rule(lowered, "PatroniReplicationLagHigh")["expr"].endswith("> 65536")


def test_counts_in_alerts_follow_the_topology(stack):
    rendered = objects(stack, ON)
    settings = render_stack(stack, ON).settings
    assert _rule(rendered, "PatroniMembersMissing")["expr"].endswith(f"< {settings.patroni.replica_count}")
    assert _rule(rendered, "RedisClusterNodesMissing")["expr"].endswith(f"< {settings.redis_cluster.node_count}")
    assert _rule(rendered, "KafkaBrokersMissing")["expr"].endswith(f"< {settings.kafka.replica_count}")
    assert f"< {settings.kafka.config.min_insync_replicas})" in _rule(rendered, "KafkaPartitionsUnderMinIsr")["expr"]


def test_controller_quorum_alert_counts_the_real_voter_pods(stack):
    rendered = objects(stack, ON)
    settings = render_stack(stack, ON).settings
    expr = _rule(rendered, "KafkaControllerQuorumLost")["expr"]
    (pattern,) = re.findall(r'pod=~"([^"]+)"', expr)
    voters = settings.kafka.controller_count
    statefulset = "ai-infra-kafka-controller" if settings.kafka.controller.dedicated else "ai-infra-kafka"
    replicas = rendered.get("StatefulSet", statefulset)["spec"]["replicas"]
    assert replicas >= voters
    pods = [f"{statefulset}-{ordinal}" for ordinal in range(replicas + 2)]  # and two that a scale-up would add
    assert [pod for pod in pods if re.fullmatch(pattern, pod)] == pods[:voters]
    assert expr.endswith(f"< {voters // 2 + 1}")
    assert not re.fullmatch(pattern, "ai-infra-kafka-100")


def test_hpa_alert_covers_every_rendered_hpa():
    rendered = objects("prod", ON)
    expr = _rule(rendered, "HorizontalPodAutoscalerAtMax")["expr"]
    (pattern,) = set(re.findall(r'horizontalpodautoscaler=~"([^"]+)"', expr))
    hpas = rendered.names("HorizontalPodAutoscaler")
    assert hpas and all(re.fullmatch(pattern, name) for name in hpas)
    assert _rule(rendered, "HorizontalPodAutoscalerAtMax")["for"] == "15m"
    assert _rule(objects("prod", ON, "monitoring.alerts.hpaAtMaxFor=30m"), "HorizontalPodAutoscalerAtMax")["for"] == "30m"


def test_alerts_carry_system_and_extra_labels():
    rendered = objects("prod", ON, "monitoring.alerts.labels={team: platform}")
    for system, rule in alert_rules(rendered):
        assert rule["labels"]["system"] == system
        assert rule["labels"]["team"] == "platform"


def test_consumer_lag_alert_only_when_a_threshold_is_set():
    assert "KafkaConsumerGroupLagHigh" not in [rule["alert"] for _, rule in alert_rules(objects("prod", ON))]
    rendered = objects("prod", ON, "monitoring.alerts.kafkaConsumerLagMessages=5000")
    assert _rule(rendered, "KafkaConsumerGroupLagHigh")["expr"].endswith("> 5000")


def test_alerts_can_be_turned_off():
    rendered = objects("prod", ON, "monitoring.alerts.enabled=false")
    assert rendered.of_kind("PrometheusRule") == []
    assert rendered.of_kind("ServiceMonitor")


# --- dashboards ---------------------------------------------------------------------------


def test_dashboard_files_are_valid_json():
    files = sorted((ROOT / "components/files/dashboards").glob("*.json"))
    assert [path.name for path in files] == ["autoscaling.json", "kafka.json", "patroni.json", "redis-cluster.json"]
    for path in files:
        board = json.loads(path.read_text())
        assert board["panels"] and board["templating"]["list"], path.name


def test_dashboards_for_the_four_systems_labelled_for_the_sidecar(stack):
    rendered = objects(stack, ON)
    boards = dashboards(rendered)
    assert sorted(boards) == ["autoscaling", "kafka", "patroni", "redis"]
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids) and all(0 < len(uid) <= 40 for uid in uids)
    namespace = render_stack(stack, ON).settings.namespace
    labelled = [cm for cm in rendered.of_kind("ConfigMap") if cm["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(labelled) == 4
    for config_map in labelled:
        assert config_map["metadata"]["namespace"] == namespace
        ((key, text),) = config_map["data"].items()
        assert key == f"{json.loads(text)['uid']}.json"  # unique file name in the sidecar's directory


def test_dashboard_queries_parse_and_use_exported_metrics(stack):
    for system, board in dashboards(objects(stack, ON)).items():
        exprs = dashboard_expressions(board)
        assert len(exprs) >= 4, system
        for expr in exprs:
            used = metric_names(expr)
            assert used, expr
            assert used <= ALLOWED[system], f"{system} dashboard queries {sorted(used - ALLOWED[system])}"


def test_dashboards_filter_on_the_scraped_job_and_the_stack_namespace(stack):
    rendered = objects(stack, ON)
    jobs = {system_of(monitor): monitor["metadata"]["name"] for monitor in rendered.of_kind("ServiceMonitor")}
    namespace = render_stack(stack, ON).settings.namespace
    for system, board in dashboards(rendered).items():
        values = {variable["name"]: variable["query"] for variable in board["templating"]["list"]}
        assert values["namespace"] == namespace
        if system == "autoscaling":
            assert values["backend_job"] == jobs["backend"]
        else:
            (service,) = selected_services(rendered, rendered.get("ServiceMonitor", values["job"]))
            assert jobs[system] == values["job"] == service["metadata"]["name"]


def test_dashboard_label_and_namespace_are_configurable():
    rendered = objects(
        "prod",
        ON,
        "monitoring.dashboards.label=dashboards",
        "monitoring.dashboards.labelValue=grafana",
        "monitoring.dashboards.namespace=monitoring",
    )
    config_maps = [cm for cm in rendered.of_kind("ConfigMap") if cm["metadata"]["labels"].get("dashboards") == "grafana"]
    assert len(config_maps) == 4
    assert {cm["metadata"]["namespace"] for cm in config_maps} == {"monitoring"}
    assert not dashboards(objects("prod", ON, "monitoring.dashboards.enabled=false"))


# --- settings -------------------------------------------------------------------------------


def test_bad_monitoring_settings_are_refused():
    from settings import SettingsError, load_settings

    def problems(monitoring: dict[str, Any]) -> list[str]:
        with pytest.raises(SettingsError) as caught:
            load_settings({"monitoring": {"enabled": True, **monitoring}}, stack="prod")
        return [problem.key for problem in caught.value.problems]

    assert problems({"scrapeInterval": "10s", "scrapeTimeout": "30s"}) == ["monitoring.scrapeTimeout"]
    assert problems({"scrapeInterval": "thirty"}) == ["monitoring.scrapeInterval"]
    assert problems({"selectorLabels": {}}) == ["monitoring.selectorLabels"]
    assert problems({"selectorLabels": {"release": "not ok"}}) == ["monitoring.selectorLabels"]
    assert problems({"alerts": {"hpaAtMaxFor": "soon"}}) == ["monitoring.alerts.hpaAtMaxFor"]
    assert problems({"dashboards": {"label": "-bad-"}}) == ["monitoring.dashboards.label"]
