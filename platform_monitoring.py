"""What Prometheus scrapes and alerts on, from the deployed parts' outputs: the metrics
endpoints the components expose, and the alert catalogue (components/alert_rules.py)
given each system's names and counts. The composition hands the result to Monitoring."""

from __future__ import annotations

from components import alert_rules, kafka_topology
from components.autoscaled_app import AppNames
from components.monitoring import MonitoringArgs
from platform_flows import DeployedParts
from settings import PlatformSettings


def monitoring_args(settings: PlatformSettings, parts: DeployedParts) -> MonitoringArgs:
    """What Prometheus scrapes and alerts on, from the deployed parts' outputs."""
    namespace, monitoring = settings.namespace, settings.monitoring
    alerts = monitoring.alerts
    endpoints = [part.metrics for part in (parts.postgres, parts.redis, parts.kafka) if part and part.metrics]
    backend = parts.apps.get("backend")
    if backend and monitoring.scrape_backend:
        endpoints.append(backend.metrics(monitoring.backend_metrics_path))
    jobs = {endpoint.system: endpoint.service for endpoint in endpoints}
    groups: dict[str, list[alert_rules.Rule]] = {}
    if parts.postgres and "patroni" in jobs:
        patroni = settings.patroni
        groups["patroni"] = alert_rules.patroni_rules(
            namespace,
            jobs["patroni"],
            scope=parts.postgres.names.scope,
            members=patroni.replica_count,
            lag_bytes=alerts.patroni_replication_lag_bytes or patroni.maximum_lag_on_failover,
            maximum_lag_on_failover=patroni.maximum_lag_on_failover,
        )
    if parts.redis and "redis" in jobs:
        redis = settings.redis_cluster
        groups["redis"] = alert_rules.redis_rules(
            namespace,
            jobs["redis"],
            cluster=parts.redis.names.full,
            masters=redis.master_count,
            replicas_per_master=redis.replicas_per_master,
        )
    if parts.kafka and "kafka" in jobs:
        roles = parts.kafka.roles
        groups["kafka"] = alert_rules.kafka_rules(
            namespace,
            jobs["kafka"],
            brokers=settings.kafka.replica_count,
            voters=kafka_topology.voters(roles).pods(settings.kafka.controller_count),
            exec_pod=kafka_topology.clients(roles).pods(1)[0],
            min_isr=settings.kafka.config.min_insync_replicas,
            consumer_lag_messages=alerts.kafka_consumer_lag_messages,
        )
    groups["apps"] = alert_rules.apps_rules(
        namespace,
        hpas=[app.hpa for app in parts.apps.values() if app.hpa and app.scales],
        hpa_at_max_for=alerts.hpa_at_max_for,
        backend_job=jobs.get("backend"),
        backend_metrics_path=monitoring.backend_metrics_path,
    )
    return MonitoringArgs(
        release=settings.release_name,
        namespace=namespace,
        settings=monitoring,
        endpoints=endpoints,
        alert_groups=alert_rules.labelled(groups, dict(alerts.labels)),
        backend_service=AppNames(settings.release_name, namespace, settings.cluster_domain, app="backend").full,
    )
