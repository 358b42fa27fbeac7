"""The dev stack on the local cluster: every pod Ready, no drift, the guide's commands as
written, the outputs reachable, Pod Security, and the NetworkPolicies in force.

Where a loopback conformance test covers the same software (tests/conformance), it stays
for the failover and data-loss figures it measures in detail; this tier shows the same
systems working through real Services, DNS, kube-proxy and NetworkPolicy enforcement."""

from __future__ import annotations

import json

from tests.real.conftest import STACK, Deployed, stack_tool

PATRONI = "ai-infra-patroni-0"
REDIS = "ai-infra-redis-cluster-0"
KAFKA = "ai-infra-kafka-0"


def test_every_pod_is_ready_and_every_job_complete(deployed: Deployed) -> None:
    assert deployed.pods()
    assert deployed.cluster.get("-n", deployed.namespace, "jobs")["items"], "the dev stack runs the Redis Jobs"
    assert deployed.not_ready() == []


def test_a_second_up_reports_no_changes(deployed: Deployed) -> None:
    # drift from server-side defaults (or anything the cluster rewrites) would show here
    output = stack_tool("up", STACK, "--expect-no-changes")
    assert "unchanged" in output, output[-3000:]


def test_restricted_pod_security_admits_every_pod_and_enforces(deployed: Deployed) -> None:
    labels = deployed.cluster.get("namespace", deployed.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged-probe"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = deployed.cluster.kubectl(
        "-n", deployed.namespace, "apply", "--dry-run=server", "-f", "-", input_text=json.dumps(privileged), check=False
    )
    assert "violates PodSecurity" in refused, refused


def test_patronictl_list_shows_a_running_leader(deployed: Deployed) -> None:
    code, out = deployed.exec(PATRONI, "patronictl list")
    assert code == 0, out
    leader = [line for line in out.splitlines() if "Leader" in line]
    assert leader and "running" in leader[0], out


def test_redis_cli_cluster_info_reports_ok_with_every_slot(deployed: Deployed) -> None:
    # the guide's command without -a: redis-cli reads the password from REDISCLI_AUTH
    code, out = deployed.exec(REDIS, "redis-cli cluster info", container="redis")
    assert code == 0, out
    assert "cluster_state:ok" in out and "cluster_slots_assigned:16384" in out, out


def test_the_guides_kafka_commands_work_as_written(deployed: Deployed) -> None:
    code, out = deployed.exec(KAFKA, "kafka-broker-api-versions.sh --bootstrap-server localhost:9092")
    assert code == 0 and "Produce(0)" in out, out
    code, out = deployed.exec(KAFKA, "kafka-topics.sh --bootstrap-server localhost:9092 --list")
    assert code == 0, out


def test_the_backends_self_check_passes_under_default_deny(deployed: Deployed) -> None:
    policies = {p["metadata"]["name"] for p in deployed.cluster.get("-n", deployed.namespace, "networkpolicies")["items"]}
    assert "ai-infra-default-deny" in policies
    code, out = deployed.exec("deploy/ai-infra-backend", "ai-infra-test-app selfcheck", timeout=180)
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["ok"] and {"postgres", "redis", "kafka"} <= set(report["checks"]), report


def test_flows_the_policies_deny_really_fail_from_inside_pods(deployed: Deployed) -> None:
    outputs = deployed.outputs
    postgres = f"{outputs['postgresPrimaryHost']} {outputs['postgresPort']}"
    code, out = deployed.exec("deploy/ai-infra-backend", f"ai-infra-test-app connect {postgres}")
    assert code == 0, f"the backend must reach PostgreSQL: {out}"
    code, out = deployed.exec("deploy/ai-infra-frontend", f"ai-infra-test-app connect {postgres}")
    assert code != 0, f"the frontend must not reach PostgreSQL: {out}"
    redis_ip = deployed.cluster.get("-n", deployed.namespace, "pod", REDIS)["status"]["podIP"]
    code, out = deployed.exec("deploy/ai-infra-backend", f"ai-infra-test-app connect {redis_ip} {outputs['redisPort']}")
    assert code == 0, f"the backend must reach Redis: {out}"
    code, out = deployed.exec(
        "deploy/ai-infra-backend", f"ai-infra-test-app connect {redis_ip} {int(outputs['redisPort']) + 10000}"
    )
    assert code != 0, f"the backend must not reach the Redis cluster bus: {out}"


def test_the_stack_outputs_name_working_endpoints(deployed: Deployed) -> None:
    outputs = deployed.outputs
    kafka_host, kafka_port = outputs["kafkaBootstrapServers"].split(",")[0].rsplit(":", 1)
    for host, port in (
        (outputs["postgresPrimaryHost"], outputs["postgresPort"]),
        (outputs["redisSeedHost"], outputs["redisPort"]),
        (kafka_host, kafka_port),
    ):
        code, out = deployed.exec("deploy/ai-infra-backend", f"ai-infra-test-app connect {host} {port}")
        assert code == 0, f"{host}:{port} from the backend: {out}"
    for tier in ("backend", "frontend"):
        code, out = deployed.exec(
            "deploy/ai-infra-nginx", f"ai-infra-test-app connect {outputs[f'{tier}Host']} {outputs[f'{tier}Port']}"
        )
        assert code == 0, f"nginx -> {tier}: {out}"
    endpoints = deployed.cluster.get(
        "-n", deployed.namespace, "endpointslices", "-l", "kubernetes.io/service-name=ai-infra-nginx"
    )
    assert any(e.get("conditions", {}).get("ready") for s in endpoints["items"] for e in s.get("endpoints") or [])
