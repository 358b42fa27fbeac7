"""The Redis images run the RedisCluster pod as rendered: start.sh, the probes and the
reconcile Job from ai-infra-redis on a read-only root, and the metrics sidecar from
ai-infra-redis-exporter against that node (see conftest.redis_node)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.images import pods
from tests.images.conftest import Service, built, wait_for
from tests.images.sandbox import Sandbox, describe
from tests.loopback import free_port

pytestmark = pytest.mark.images


def test_the_guides_cluster_info_with_the_password_from_the_environment(redis_node: Service):
    # the guide's `kubectl exec ... -- redis-cli cluster info`, REDISCLI_AUTH from the pod env
    result = redis_node.sandbox.run(["redis-cli", "-p", str(redis_node.port), "cluster", "info"], env=redis_node.env)
    assert result.returncode == 0, describe(result)
    assert "cluster_state:ok" in result.stdout and "cluster_slots_assigned:16384" in result.stdout
    version = redis_node.sandbox.run(["redis-server", "--version"])
    assert " v=7.0.15 " in version.stdout


def test_probes_pass_once_the_job_has_made_the_cluster(redis_node: Service):
    spec = pods.container(pods.pod_spec("StatefulSet", "ai-infra-redis-cluster"), "redis")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        result = redis_node.sandbox.run(spec[probe]["exec"]["command"], env=redis_node.env)
        assert result.returncode == 0, f"{probe}: {describe(result)}"
    assert (redis_node.sandbox.volumes["/run/redis"] / "ready-once").exists(), "the readiness latch is on its emptyDir"


def test_nothing_is_written_outside_the_volumes(redis_node: Service):
    result = redis_node.sandbox.run(["sh", "-c", "touch /etc/redis-probe-file /data/.probe"], env=redis_node.env)
    assert "Read-only file system" in result.stderr, describe(result)
    assert (redis_node.sandbox.volumes["/data"] / "nodes.conf").is_file()
    assert (redis_node.sandbox.volumes["/data"] / "appendonlydir").is_dir()


def test_the_exporter_sidecar_reports_the_node(redis_node: Service, workdir: Path):
    ref = built("ai-infra-redis-exporter")
    pod = pods.pod_spec("StatefulSet", "ai-infra-redis-cluster")
    spec = pods.container(pod, "metrics")
    assert "command" not in spec, "the sidecar runs the image's entrypoint"
    port = free_port()
    env = pods.env(
        spec,
        pod_name="ai-infra-redis-cluster-0",
        secrets={"REDIS_PASSWORD": redis_node.password},
        values={"REDIS_ADDR": f"redis://127.0.0.1:{redis_node.port}"},
    )
    env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"  # instead of :9121 on every address
    user = f"{spec['securityContext']['runAsUser']}:{spec['securityContext']['runAsUser']}"
    with Sandbox(ref, writable=pods.writable_paths(pod, spec), user=user) as sandbox:
        version = sandbox.run(["/usr/local/bin/redis_exporter", "--version"])
        assert "v1.62.0" in version.stdout + version.stderr, describe(version)
        process = sandbox.start([], env=env, log=workdir / "redis-exporter.log")

        def health() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}{spec['readinessProbe']['httpGet']['path']}", timeout=2
                ) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for("the exporter's /health", health, 30, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
    lines = {line.split(" ")[0]: line.split(" ")[-1] for line in metrics.splitlines() if not line.startswith("#")}
    assert lines.get("redis_up") == "1", json.dumps({k: v for k, v in lines.items() if k.startswith("redis_up")})
    assert lines.get("redis_cluster_state") == "1"
    assert any(key.startswith("redis_exporter_build_info") and 'version="v1.62.0"' in key for key in lines)
