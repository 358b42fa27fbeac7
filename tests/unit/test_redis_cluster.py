"""RedisCluster as the program registers it under mocks, dev and prod: topology, Jobs,
scripts, probes, passwords, disruption and placement."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from components.k8s import CONFIG_CHECKSUM, CREDENTIALS_CHECKSUM
from components.redis_cluster import FILES, SCRIPTS
from settings import SettingsError
from settings.base import parse_quantity
from tests.conftest import Objects, env, objects, render_stack

NAME = "ai-infra-redis-cluster"
HEADLESS = f"{NAME}-headless"
CONFIG = f"{NAME}-config"
SECRET = f"{NAME}-secret"


def sts(stack: str, *overrides: str) -> dict:
    return objects(stack, *overrides).get("StatefulSet", NAME)


def pod_spec(stack: str, *overrides: str) -> dict:
    return sts(stack, *overrides)["spec"]["template"]["spec"]


def container(stack: str, name: str, *overrides: str) -> dict:
    return next(c for c in pod_spec(stack, *overrides)["containers"] if c["name"] == name)


def redis_conf(stack: str, *overrides: str) -> str:
    return objects(stack, *overrides).get("ConfigMap", CONFIG)["data"]["redis.conf"]


def conf_value(conf: str, key: str) -> str:
    match = re.search(rf"(?m)^{re.escape(key)} (.+)$", conf)
    assert match, f"{key} missing from redis.conf"
    return match.group(1).strip()


def jobs(stack: str, *overrides: str) -> dict[str, dict]:
    found = {}
    for job in objects(stack, *overrides).of_kind("Job"):
        name = job["metadata"]["name"]
        if name.startswith(f"{NAME}-"):
            mode = job["spec"]["template"]["spec"]["containers"][0]["name"]  # the container is named by its mode
            found[mode] = job
    return found


# --- topology ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "overrides", "masters", "replicas"),
    [
        ("dev", (), 1, 0),
        ("prod", (), 3, 1),
        ("prod", ("redisCluster.masterCount=4",), 4, 1),
        ("prod", ("redisCluster.masterCount=6", "redisCluster.replicasPerMaster=2"), 6, 2),
    ],
)
def test_statefulset_replicas_are_masters_times_one_plus_replicas_and_jobs_agree(stack, overrides, masters, replicas):
    assert sts(stack, *overrides)["spec"]["replicas"] == masters * (1 + replicas)
    found = jobs(stack, *overrides)
    assert set(found) == {"preflight", "reconcile"}
    for job in found.values():
        env_ = env(job["spec"]["template"]["spec"]["containers"][0])
        assert env_["REDIS_NODE_COUNT"] == str(masters * (1 + replicas))
        assert env_["REDIS_MASTER_COUNT"] == str(masters)
        assert env_["REDIS_REPLICAS_PER_MASTER"] == str(replicas)


def test_pods_are_named_as_in_the_guide(stack):
    statefulset = sts(stack)
    assert statefulset["metadata"]["name"] == "ai-infra-redis-cluster"  # pods ai-infra-redis-cluster-0...
    env_ = env(container(stack, "redis"))
    assert env_["REDIS_NODE_HOST_TEMPLATE"].startswith(f"{NAME}-%d.{HEADLESS}.")


def test_a_topology_change_renames_the_jobs_so_they_run_again():
    before = {mode: job["metadata"]["name"] for mode, job in jobs("prod").items()}
    after = {mode: job["metadata"]["name"] for mode, job in jobs("prod", "redisCluster.masterCount=4").items()}
    same = {mode: job["metadata"]["name"] for mode, job in jobs("prod", "redisCluster.clusterNodeTimeout=6000").items()}
    assert before["reconcile"] != after["reconcile"] and before["preflight"] != after["preflight"]
    assert before == same, "a change that is not a topology change must not re-run the Jobs"
    for job in jobs("prod").values():
        spec = job["spec"]
        assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
        assert spec["backoffLimit"] >= 1 and spec["activeDeadlineSeconds"] >= 600
        assert "ttlSecondsAfterFinished" not in spec


def test_prod_needs_three_masters_and_a_replica_each():
    for override, key in (
        ("redisCluster.masterCount=2", "redisCluster.masterCount"),
        ("redisCluster.masterCount=1", "redisCluster.masterCount"),
        ("redisCluster.replicasPerMaster=0", "redisCluster.replicasPerMaster"),
    ):
        with pytest.raises(SettingsError) as caught:
            render_stack("prod", override)
        assert any(p.key == key for p in caught.value.problems), caught.value.lines()


# --- Services --------------------------------------------------------------------------------


def test_headless_service_publishes_not_ready_pods_on_both_ports(stack):
    rendered = objects(stack)
    headless = rendered.get("Service", HEADLESS)
    spec = headless["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True
    assert {p["port"] for p in spec["ports"]} == {6379, 16379}
    pod_labels = rendered.get("StatefulSet", NAME)["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"].items() <= pod_labels.items()
    assert rendered.get("StatefulSet", NAME)["spec"]["serviceName"] == HEADLESS
    client = rendered.get("Service", NAME)["spec"]
    assert client["type"] == "ClusterIP" and [p["port"] for p in client["ports"]] == [6379]
    assert client["selector"].items() <= pod_labels.items()


# --- StatefulSet -----------------------------------------------------------------------------


def test_statefulset_is_parallel_rolling_with_data_on_the_volume(stack):
    spec = sts(stack)["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    claims = {claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]}
    assert "data" in claims
    redis = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == "redis")
    data_mount = next(m["mountPath"] for m in redis["volumeMounts"] if m["name"] == "data")
    conf = redis_conf(stack)
    assert conf_value(conf, "cluster-config-file").startswith(data_mount + "/")
    assert conf_value(conf, "dir") == data_mount
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["template"]["spec"]["enableServiceLinks"] is False
    assert env(redis)["POD_IP"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_pod_template_checksums_follow_config_and_password():
    def checksums(*overrides: str) -> tuple[str, str]:
        annotations = sts("prod", *overrides)["spec"]["template"]["metadata"]["annotations"]
        return annotations[CONFIG_CHECKSUM], annotations[CREDENTIALS_CHECKSUM]

    config, credentials = checksums()
    assert re.fullmatch(r"[0-9a-f]{64}", config)
    assert re.fullmatch(r"[0-9a-f]{64}", credentials)
    new_config = checksums("redisCluster.clusterNodeTimeout=6000")
    assert new_config[0] != config
    assert new_config[1] == credentials
    new_password = checksums("redisPassword=an-other-password-of-length")
    assert new_password[0] == config
    assert new_password[1] != credentials


def test_redis_conf_is_cluster_mode_durable_and_bounded(stack):
    conf = redis_conf(stack)
    assert conf_value(conf, "cluster-enabled") == "yes"
    assert conf_value(conf, "appendonly") == "yes"
    assert conf_value(conf, "appendfsync") == "everysec"
    assert conf_value(conf, "cluster-require-full-coverage") == "no"
    assert conf_value(conf, "protected-mode") == "yes"
    assert 3000 <= int(conf_value(conf, "cluster-node-timeout")) <= 15000
    limit = container(stack, "redis")["resources"]["limits"]["memory"]
    maxmemory = int(conf_value(conf, "maxmemory"))
    assert 0 < maxmemory < parse_quantity(limit)
    assert conf_value(conf, "maxmemory-policy") == "allkeys-lru"
    settings_lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert not [line for line in settings_lines if line.startswith(("requirepass", "masterauth"))], (
        "the password is fed on stdin, not kept in the ConfigMap"
    )


def test_prod_node_timeout_is_shorter_than_redis_default():
    assert conf_value(redis_conf("prod"), "cluster-node-timeout") == "5000"


@pytest.mark.parametrize("timeout", [2000, 20000])
def test_node_timeout_outside_the_sane_range_is_refused(timeout):
    with pytest.raises(SettingsError) as caught:
        render_stack("prod", f"redisCluster.clusterNodeTimeout={timeout}")
    assert any(p.key == "redisCluster.clusterNodeTimeout" for p in caught.value.problems)


def test_configmap_carries_the_scripts_verbatim():
    data = objects("prod").get("ConfigMap", CONFIG)["data"]
    for script in SCRIPTS:
        assert data[script] == (FILES / script).read_text()


def test_probes_do_not_deadlock_and_liveness_ignores_cluster_state(stack):
    redis = container(stack, "redis")
    assert redis["livenessProbe"]["exec"]["command"][-1].endswith("probe-liveness.sh")
    assert redis["readinessProbe"]["exec"]["command"][-1].endswith("probe-readiness.sh")
    # The startup probe (a long AOF load) and liveness accept LOADING and ignore the cluster.
    assert redis["startupProbe"]["exec"]["command"][-1].endswith("probe-liveness.sh")
    assert redis["startupProbe"]["failureThreshold"] * redis["startupProbe"]["periodSeconds"] >= 300


# A redis-cli stand-in for the probe scripts: it answers PING and CLUSTER INFO from the
# environment, so the probes' decisions can be run without a server.
_STUB_REDIS_CLI = """#!/bin/bash
case "$*" in
*PING*) echo "$STUB_PING" ;;
*"CLUSTER INFO"*) printf 'cluster_state:%s\\r\\ncluster_slots_assigned:16384\\r\\n' "$STUB_STATE" ;;
*) exit 1 ;;
esac
"""


def _probe(tmp_path: Path, script: str, ping: str, state: str) -> int:
    stub = tmp_path / "bin" / "redis-cli"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(_STUB_REDIS_CLI)
    stub.chmod(0o755)
    env = {
        "PATH": f"{stub.parent}:/usr/bin:/bin",
        "STUB_PING": ping,
        "STUB_STATE": state,
        "REDIS_READY_LATCH": str(tmp_path / "ready-once"),
    }
    result = subprocess.run(["bash", str(FILES / script)], env=env, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode


def test_liveness_needs_an_answer_but_not_a_healthy_cluster(tmp_path):
    """A failed shard elsewhere must not restart this pod, nor a long AOF load."""
    assert _probe(tmp_path, "probe-liveness.sh", "PONG", "fail") == 0
    assert _probe(tmp_path, "probe-liveness.sh", "LOADING Redis is loading the dataset in memory", "fail") == 0
    assert _probe(tmp_path, "probe-liveness.sh", "Could not connect to Redis", "ok") == 1


def test_readiness_waits_for_cluster_state_ok_once_then_only_for_an_answer(tmp_path):
    assert _probe(tmp_path, "probe-readiness.sh", "PONG", "fail") == 1
    assert not (tmp_path / "ready-once").exists()
    assert _probe(tmp_path, "probe-readiness.sh", "PONG", "ok") == 0
    # Latched: one failed shard no longer takes this pod out of its Services...
    assert _probe(tmp_path, "probe-readiness.sh", "PONG", "fail") == 0
    # ...but a server that does not answer is still not ready.
    assert _probe(tmp_path, "probe-readiness.sh", "Could not connect to Redis", "ok") == 1


def test_grace_period_outlasts_the_prestop_wait_and_shutdown(stack):
    redis = container(stack, "redis")
    assert redis["lifecycle"]["preStop"]["exec"]["command"][-1].endswith("prestop.sh")
    wait = int(env(redis)["REDIS_FAILOVER_TIMEOUT"])
    assert pod_spec(stack)["terminationGracePeriodSeconds"] > wait + 10
    longer = pod_spec(stack, "redisCluster.failoverTimeoutSeconds=60")
    assert longer["terminationGracePeriodSeconds"] > 60 + 10


def test_exporter_sidecar_on_9121_reads_the_password_from_the_secret(stack):
    exporter = container(stack, "metrics")
    assert [p["containerPort"] for p in exporter["ports"]] == [9121]
    password = env(exporter)["REDIS_PASSWORD"]["secretKeyRef"]
    assert password["name"] == SECRET
    rendered = objects(stack)
    assert rendered.get("Service", f"{NAME}-metrics")["spec"]["ports"][0]["port"] == 9121


def test_every_redis_tool_gets_the_password_as_rediscli_auth_and_never_as_dash_a(stack):
    rendered = objects(stack)
    secret = rendered.get("Secret", SECRET)
    assert "redis-password" in (secret.get("stringData") or secret.get("data") or {})
    specs = [container(stack, "redis")] + [j["spec"]["template"]["spec"]["containers"][0] for j in jobs(stack).values()]
    for spec in specs:
        assert env(spec)["REDISCLI_AUTH"]["secretKeyRef"] == {"name": SECRET, "key": "redis-password"}
    for owner, template in rendered.pod_templates():
        for spec in template["spec"]["containers"]:
            words = [*spec.get("command", []), *spec.get("args", [])]
            assert "-a" not in words and "--pass" not in words, owner["metadata"]["name"]
    for name in ("redis.conf", *SCRIPTS):
        text = (FILES / name).read_text()
        assert not re.search(r"redis-cli[^\n]*\s-a\s", text), f"{name} passes the password with -a"


def test_configured_password_is_the_secret_and_a_secret_output():
    rendered = render_stack("prod", "redisPassword=configured-redis-password-123")
    secret = Objects(rendered.objects).get("Secret", SECRET)
    assert secret["stringData"]["redis-password"] == "configured-redis-password-123"
    assert "redisPassword" in rendered.secret_outputs
    assert rendered.outputs["redisSeedHost"] == "ai-infra-redis-cluster.ai-infra-prod.svc.cluster.local"
    assert rendered.outputs["redisPort"] == 6379


def test_generated_password_is_stable_across_renders():
    first = objects("prod").get("Secret", SECRET)["stringData"]["redis-password"]
    second = Objects(render_stack("prod", "redisCluster.clusterNodeTimeout=6000").objects).get("Secret", SECRET)
    assert len(first) >= 16 and second["stringData"]["redis-password"] == first


def test_backend_gets_the_seed_address_and_the_password_from_the_secret(stack):
    backend = objects(stack).get("Deployment", "ai-infra-backend")
    env_ = env(backend["spec"]["template"]["spec"]["containers"][0])
    assert env_["REDIS_HOST"].startswith(f"{NAME}.")
    assert env_["REDIS_PORT"] == "6379"
    assert env_["REDIS_PASSWORD"]["secretKeyRef"] == {"name": SECRET, "key": "redis-password"}


# --- disruption and placement -------------------------------------------------------------------


def test_prod_pdb_allows_one_pod_down_and_dev_has_none():
    prod = objects("prod")
    pdb = prod.get("PodDisruptionBudget", f"{NAME}-pdb")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    pod_labels = prod.get("StatefulSet", NAME)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert objects("dev").find("PodDisruptionBudget", f"{NAME}-pdb") is None


def test_prod_requires_separate_nodes_for_every_redis_pod():
    spec = pod_spec("prod")
    pod_labels = sts("prod")["spec"]["template"]["metadata"]["labels"]
    required = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [term["topologyKey"] for term in required] == ["kubernetes.io/hostname"]
    assert required[0]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"


def test_no_hpa_targets_redis(stack):
    for hpa in objects(stack).of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != NAME


def test_pods_and_jobs_meet_the_restricted_pod_security_profile(stack):
    rendered = objects(stack)
    templates = [t for o, t in rendered.pod_templates() if o["metadata"]["name"].startswith(NAME)]
    assert len(templates) == 3
    for template in templates:
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for spec_container in spec["containers"]:
            context = spec_container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["readOnlyRootFilesystem"] is True


# --- scale-in -----------------------------------------------------------------------------------


def test_lowering_the_master_count_without_drain_is_refused():
    with pytest.raises(SettingsError) as caught:
        render_stack("prod", "redisCluster.drain.fromMasterCount=4")
    [problem] = caught.value.problems
    assert problem.key == "redisCluster.masterCount"
    assert "drain.enabled=true" in problem.message


def test_drain_needs_the_count_it_lowers_from():
    with pytest.raises(SettingsError) as caught:
        render_stack("prod", "redisCluster.drain.enabled=true")
    assert [p.key for p in caught.value.problems] == ["redisCluster.drain.fromMasterCount"]
    with pytest.raises(SettingsError) as caught:
        render_stack("prod", "redisCluster.drain.enabled=true", "redisCluster.drain.fromMasterCount=3")
    assert [p.key for p in caught.value.problems] == ["redisCluster.drain.fromMasterCount"]


def test_drain_enabled_reaches_the_jobs_only_while_lowering():
    assert all(env(j["spec"]["template"]["spec"]["containers"][0])["REDIS_DRAIN"] == "no" for j in jobs("prod").values())
    draining = jobs("prod", "redisCluster.drain.enabled=true", "redisCluster.drain.fromMasterCount=4")
    for job in draining.values():
        assert env(job["spec"]["template"]["spec"]["containers"][0])["REDIS_DRAIN"] == "yes"
    # That the preflight script then refuses to remove a slot owner without REDIS_DRAIN=yes
    # is shown on real redis-server by tests/conformance/test_redis_cluster.py.


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_as_bash(script):
    """The image (Debian-based redis) runs them with bash; so do the conformance tests."""
    result = subprocess.run(["bash", "-n", str(FILES / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
