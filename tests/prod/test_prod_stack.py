"""The prod stack on a 7-node local cluster: the guide's HA topology deployed by
`make up STACK=prod`, every pod Ready, no drift on a second up, the HPAs fed by
metrics-server, and the guide's status commands showing the topology it promises."""

from __future__ import annotations

import json
import re
from collections import Counter

from tests.deployed import Deployed, stack_tool
from tests.prod.conftest import PROD_NODES, STACK
from tests.prod.drills import BOOTSTRAP, KAFKA, PATRONI, REDIS, patroni_members


def test_every_pod_is_ready_and_every_job_complete(prod: Deployed) -> None:
    assert len(prod.cluster.nodes()) >= PROD_NODES
    assert prod.not_ready() == []
    assert int(prod.outputs["minimumNodes"]) <= PROD_NODES


def test_a_second_up_reports_no_changes(prod: Deployed) -> None:
    output = stack_tool("up", STACK, "--expect-no-changes", env={"YES": "1"})
    assert "unchanged" in output, output[-3000:]


def test_the_required_anti_affinity_spreads_every_data_member(prod: Deployed) -> None:
    for name, members in ((PATRONI, 3), (REDIS, 6), (f"{KAFKA}-controller", 3), (KAFKA, 3)):
        pods = [p for p in prod.pods() if re.fullmatch(rf"{name}-\d+", p["metadata"]["name"])]
        nodes = Counter(p["spec"]["nodeName"] for p in pods)
        assert len(pods) == members, (name, [p["metadata"]["name"] for p in pods])
        if name in (PATRONI, REDIS):  # required; Kafka's is preferred
            assert max(nodes.values()) == 1, (name, nodes)


def test_hpas_show_real_cpu_and_memory_from_metrics_server(prod: Deployed) -> None:
    def measured() -> bool:
        hpas = prod.cluster.get("-n", prod.namespace, "hpa")["items"]
        assert {h["metadata"]["name"] for h in hpas} == {"ai-infra-backend-hpa", "ai-infra-frontend-hpa", "ai-infra-nginx-hpa"}
        for hpa in hpas:
            current = {m["resource"]["name"]: m["resource"]["current"] for m in hpa["status"].get("currentMetrics") or []}
            if set(current) != {"cpu", "memory"} or any("averageUtilization" not in v for v in current.values()):
                return False
        return True

    prod.cluster.wait("metrics-server's figures in every HPA", measured, timeout=300, interval=5)
    table = prod.cluster.kubectl("-n", prod.namespace, "get", "hpa")
    assert "<unknown>" not in table, table


def test_patronictl_list_shows_a_leader_a_sync_standby_and_a_replica_without_lag(prod: Deployed) -> None:
    def listed() -> bool:
        members = patroni_members(prod)
        roles = sorted(m["Role"] for m in members)
        # Patroni 4 reports each replica's receive and replay lag in bytes
        lags = [(m["Receive Lag"], m["Replay Lag"]) for m in members if m["Role"] != "Leader"]
        return roles == ["Leader", "Replica", "Sync Standby"] and all(lag == (0, 0) for lag in lags)

    prod.cluster.wait("a Leader, a Sync Standby and a Replica at lag 0", listed, timeout=120, interval=3)
    code, out = prod.exec(f"{PATRONI}-0", "patronictl list")
    assert code == 0 and "Sync Standby" in out, out


def test_redis_cluster_has_three_masters_each_with_a_replica(prod: Deployed) -> None:
    code, info = prod.exec(f"{REDIS}-0", "redis-cli cluster info", container="redis")
    assert code == 0 and "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info, info
    code, nodes = prod.exec(f"{REDIS}-0", "redis-cli cluster nodes", container="redis")
    assert code == 0, nodes
    masters = {f[0] for f in (line.split() for line in nodes.splitlines()) if "master" in f[2]}
    replicas_of = Counter(f[3] for f in (line.split() for line in nodes.splitlines()) if "slave" in f[2])
    assert len(masters) == 3 and all(replicas_of[m] == 1 for m in masters), nodes


def test_kafka_runs_three_dedicated_controllers_and_three_brokers(prod: Deployed) -> None:
    code, out = prod.exec(f"{KAFKA}-0", f"kafka-metadata-quorum.sh --bootstrap-server {BOOTSTRAP} describe --status")
    assert code == 0, out
    voters = re.search(r"CurrentVoters:\s+\[(.*)\]", out)
    assert voters and len(re.findall(r'"id":\s*\d+', voters.group(1))) == 3, out
    code, out = prod.exec(f"{KAFKA}-0", f"kafka-broker-api-versions.sh --bootstrap-server {BOOTSTRAP}")
    assert code == 0 and len(re.findall(r"^\S+:9092 \(id: 10\d", out, re.MULTILINE)) == 3, out


def test_the_backends_self_check_passes_under_default_deny(prod: Deployed) -> None:
    code, out = prod.exec("deploy/ai-infra-backend", "ai-infra-test-app selfcheck", timeout=180)
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["ok"], report
    assert len(report["checks"]["redis"]["detail"]["shards"]) == 3, report
