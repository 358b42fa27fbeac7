"""The stand-in application image: each tier's rendered Deployment (backend, frontend,
nginx) served from ai-infra-test-app on its probe path, and the backend's self-check
using the env the program wires in (DB_*, REDIS_*, KAFKA_*) against the dev stack's
PostgreSQL, Redis Cluster and Kafka run from the project's images."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.images import pods
from tests.images.conftest import Service, built, psql, wait_for
from tests.images.sandbox import Sandbox, describe
from tests.loopback import free_port

pytestmark = pytest.mark.images

TIERS = ("backend", "frontend", "nginx")


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def backend_env(postgres: Service, redis: Service, kafka: Service) -> dict[str, str]:
    spec = pods.container(pods.pod_spec("Deployment", "ai-infra-backend"), "backend")
    # every host stays the Service's DNS name (in /etc/hosts here, cluster DNS in a pod)
    kafka_host = pods.env(
        spec, pod_name="x", secrets=dict.fromkeys(("DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET", "SESSION_SECRET"), "")
    )["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0]
    return pods.env(
        spec,
        pod_name="ai-infra-backend-0",
        secrets={
            "DB_PASSWORD": postgres.env["AI_INFRA_APP_PASSWORD"],
            "REDIS_PASSWORD": redis.password,
            "JWT_SECRET": "jwt",
            "SESSION_SECRET": "session",
        },
        values={
            "DB_PORT": str(postgres.port),
            "REDIS_PORT": str(redis.port),
            "KAFKA_BOOTSTRAP_SERVERS": f"{kafka_host}:{kafka.port}",
        },
    )


@pytest.mark.parametrize("tier", TIERS)
def test_each_tier_answers_its_probes(tier: str, workdir: Path):
    pod = pods.pod_spec("Deployment", f"ai-infra-{tier}")
    spec = pods.container(pod, tier)
    port = free_port()  # the rendered containerPort may be 80: not bindable here, PORT says which
    env = {"PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1", "APP_NAME": tier}
    with Sandbox(built("ai-infra-test-app"), writable=pods.writable_paths(pod, spec)) as sandbox:
        process = sandbox.start([], env=env, log=workdir / f"app-{tier}.log")
        probes = [spec[probe] for probe in ("livenessProbe", "readinessProbe")]
        for path in [probe["httpGet"]["path"] for probe in probes if "httpGet" in probe]:
            wait_for(f"{tier} {path}", lambda path=path: _answers(f"http://127.0.0.1:{port}{path}"), 30, process)
            status, body = get(f"http://127.0.0.1:{port}{path}")
            assert (status, body["app"]) == (200, tier)
        if any("tcpSocket" in probe for probe in probes):  # the port the kubelet dials is PORT here
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert any("httpGet" in probe for probe in probes), f"{tier}: no probe asks the app to serve"
        assert sandbox.stop(process) == 0, "SIGTERM stops the server cleanly"


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def test_selfcheck_reaches_postgres_redis_and_kafka(
    postgres_server: Service, redis_node: Service, kafka_node: Service, workdir: Path
):
    env = backend_env(postgres_server, redis_node, kafka_node)
    port = free_port()
    with Sandbox(built("ai-infra-test-app"), binds={"/etc/hosts": redis_node.sandbox.binds["/etc/hosts"]}) as sandbox:
        process = sandbox.start(
            [], env={**env, "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1"}, log=workdir / "app-selfcheck.log"
        )
        wait_for("the backend", lambda: _answers(f"http://127.0.0.1:{port}/health"), 30, process)
        status, report = get(f"http://127.0.0.1:{port}/selfcheck")
        assert status == 200 and report["ok"], json.dumps(report, indent=2)
        checks = report["checks"]
        assert checks["postgres"]["detail"]["serverVersion"].startswith("15.")
        assert [shard["node"] for shard in checks["redis"]["detail"]["shards"]] == [f"127.0.0.1:{redis_node.port}"]
        assert checks["kafka"]["detail"]["topic"] == "ai-infra-selfcheck"
        # the CLI form a test runs with kubectl exec, again: the row is upserted, not added
        again = sandbox.run(["ai-infra-test-app", "selfcheck"], env=env, timeout=120)
        assert again.returncode == 0, describe(again)
    rows = psql(postgres_server, "SELECT count(*) FROM ai_infra_selfcheck")
    assert rows.stdout.strip() == "1", describe(rows)


def test_selfcheck_fails_cleanly_without_its_backends(workdir: Path):
    closed = str(free_port())
    env = {
        **dict.fromkeys(("DB_NAME", "DB_USER", "DB_PASSWORD"), "x"),
        **{"DB_HOST": "127.0.0.1", "DB_PORT": closed, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": closed},
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
    }
    with Sandbox(built("ai-infra-test-app")) as sandbox:
        started = time.monotonic()
        result = sandbox.run(["ai-infra-test-app", "selfcheck"], env=env, timeout=120)
        seconds = time.monotonic() - started
        unconfigured = sandbox.run(["ai-infra-test-app", "selfcheck"], timeout=60)
        refused = sandbox.run(["ai-infra-test-app", "connect", "127.0.0.1", closed])
    assert result.returncode == 1, describe(result)
    report = json.loads(result.stdout)
    assert not report["ok"] and all(not check["ok"] and check["error"] for check in report["checks"].values())
    assert seconds < 60, f"the failing self-check took {seconds:.0f} s"
    assert "Traceback" not in result.stderr, result.stderr
    assert all("not configured" in c["error"] for c in json.loads(unconfigured.stdout)["checks"].values())
    assert refused.returncode == 1 and "cannot connect" in refused.stdout


@pytest.mark.parametrize("system", ["postgres", "redis", "kafka"])
def test_the_drill_writer_counts_acknowledged_writes_and_reads_them_back(
    system: str, postgres_server: Service, redis_node: Service, kafka_node: Service
):
    env = backend_env(postgres_server, redis_node, kafka_node)
    with Sandbox(built("ai-infra-test-app"), binds={"/etc/hosts": redis_node.sandbox.binds["/etc/hosts"]}) as sandbox:
        # one Redis node without replicas: WAIT has nobody to confirm
        result = sandbox.run(["ai-infra-test-app", "write", system, "--seconds", "3", "--replicas", "0"], env=env, timeout=180)
    assert result.returncode == 0, describe(result)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    acks = [event for event in events if event["event"] == "ack"]
    summary = events[-1]
    assert summary["event"] == "summary" and summary["lost"] == 0, describe(result)
    # ~50 writes a second; every one acknowledged and found again
    assert summary["acked"] == len(acks) >= 20, summary
    assert not [event for event in events if event["event"] == "error"], describe(result)
