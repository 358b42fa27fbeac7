"""The alert catalogue: PrometheusRule rules for each system of the platform, written on
the exporters' own metric names (Patroni's REST API, redis_exporter, kafka-exporter) and on
kube-state-metrics for HPAs and the Kafka controller quorum.

Pure functions of what they alert on, given by the composition from the components'
outputs: a Service name as Prometheus' job label, pod names, counts and thresholds.
Each rule carries a runbook line in its description.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, Any]

REDIS_CLUSTER_SLOTS = 16384


def labelled(groups: dict[str, list[Rule]], extra: dict[str, str]) -> dict[str, list[Rule]]:
    """Every rule with the operator's ``extra`` labels (monitoring.alerts.labels) and its
    system's name; a rule's own labels (severity) win over the extra ones."""
    return {
        system: [{**rule, "labels": {**extra, **rule["labels"], "system": system}} for rule in rules]
        for system, rules in groups.items()
    }


def _alert(name: str, expr: str, *, for_: str, severity: str, summary: str, description: str) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def patroni_rules(
    namespace: str, job: str, *, scope: str, members: int, lag_bytes: int, maximum_lag_on_failover: int
) -> list[Rule]:
    """``job``: the Service Prometheus scrapes Patroni through; ``scope``: the cluster name
    (and pod prefix); ``lag_bytes``: the replication lag that is too much."""
    sel = f'namespace="{namespace}", job="{job}", scope="{scope}"'
    lag = lag_bytes
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
                f"({maximum_lag_on_failover} bytes) Patroni will not promote it in a failover.",
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


def redis_rules(namespace: str, job: str, *, cluster: str, masters: int, replicas_per_master: int) -> list[Rule]:
    """``cluster``: the StatefulSet (and pod prefix) of the Redis nodes."""
    nodes = masters * (1 + replicas_per_master)
    sel = f'namespace="{namespace}", job="{job}"'
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
            f"(count(redis_up{{{sel}}} == 1) or vector(0)) < {nodes}",
            for_="5m",
            severity="warning",
            summary=f"Only {{{{ $value }}}} of {nodes} Redis nodes are up",
            description=f"redisCluster asks for {masters} masters with {replicas_per_master} "
            f"replica(s) each ({nodes} nodes); fewer have answered for 5 minutes, so a further failure may "
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


def kafka_rules(
    namespace: str, job: str, *, brokers: int, voters: list[str], exec_pod: str, min_isr: int, consumer_lag_messages: int
) -> list[Rule]:
    """``voters``: the pods of the KRaft quorum; ``exec_pod``: a broker pod the runbook
    commands run in; ``consumer_lag_messages``: 0 for no consumer-lag alert."""
    sel = f'namespace="{namespace}", job="{job}"'
    voter_pods = "|".join(voters)
    majority = len(voters) // 2 + 1
    topics = f"kubectl exec -n {namespace} {exec_pod} -- kafka-topics.sh --bootstrap-server localhost:9092 --describe"
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
            f"kafka_brokers{{{sel}}} < {brokers}",
            for_="2m",
            severity="warning",
            summary=f"Only {{{{ $value }}}} of {brokers} Kafka brokers are in the cluster metadata",
            description=f"kafka.replicaCount is {brokers}, but the cluster metadata has listed fewer live "
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
            summary=f"Only {{{{ $value }}}} of {len(voters)} KRaft voters are ready: no active controller",
            description="Fewer than a majority of the KRaft controller quorum have been ready for 1 minute, so no "
            "controller can be elected: topic changes, leader elections and broker registration stop. kafka-exporter "
            "exports no controller metric (ActiveControllerCount is a JMX metric), so this alert counts the ready "
            f"voter pods ({voter_pods}) from kube-state-metrics.",
        ),
    ]
    if consumer_lag_messages > 0:
        rules.append(
            _alert(
                "KafkaConsumerGroupLagHigh",
                f"sum by (namespace, consumergroup, topic) (kafka_consumergroup_lag{{{sel}}}) > {consumer_lag_messages}",
                for_="10m",
                severity="warning",
                summary="Consumer group {{ $labels.consumergroup }} lags {{ $value }} messages on {{ $labels.topic }}",
                description=f"The group has been more than {consumer_lag_messages} messages behind the "
                "end of the topic for 10 minutes (monitoring.alerts.kafkaConsumerLagMessages).",
            )
        )
    return rules


def apps_rules(
    namespace: str, *, hpas: list[str], hpa_at_max_for: str, backend_job: str | None, backend_metrics_path: str
) -> list[Rule]:
    """``hpas``: the HPAs that can scale (min < max); ``backend_job``: the backend's Service
    when Prometheus scrapes it, else None."""
    rules = []
    if hpas:
        sel = f'namespace="{namespace}", horizontalpodautoscaler=~"{"|".join(hpas)}"'
        wait = hpa_at_max_for
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
                description=f"Prometheus has failed to scrape {backend_metrics_path} on "
                "{{ $labels.pod }} for 5 minutes: the pod is overloaded, hung or not serving HTTP.",
            )
        )
    return rules
