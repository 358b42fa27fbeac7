"""Stack config: defaults per profile, and a table of invalid configs that must each be
refused by `tools/render.py` with exit code 2, the full key on stderr and the fix."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from settings import SECRET_KEYS, SettingsError, defaults, load_settings, stack_file
from settings.base import canonical_quantity, parse_quantity
from tests.conftest import ROOT
from tools import render as render_tool

# (stack, --set overrides, key named on stderr, a fragment of the message)
INVALID = [
    ("prod", ["backend.autoscaling.minReplicas=12"], "backend.autoscaling.minReplicas", "greater than maxReplicas"),
    ("dev", ["frontend.autoscaling.minReplicas=3"], "frontend.autoscaling.minReplicas", "set minReplicas <= maxReplicas"),
    ("prod", ["backend.resources.requests.cpu=2"], "backend.resources.requests.cpu", "request 2 is larger than limit 1;"),
    ("prod", ["backend.resources.requests.memory=3Gi"], "backend.resources.requests.memory", "larger than limit 2Gi"),
    ("dev", ["nginx.resources.limits.memory=12Qi"], "nginx.resources.limits.memory", "unknown suffix 'Qi'"),
    ("dev", ["backend.resources.requests.cpu=lots"], "backend.resources.requests.cpu", "is not a Kubernetes quantity"),
    ("dev", ["frontend.resources.requests.cpu=-1"], "frontend.resources.requests.cpu", "is negative"),
    ("dev", ["backend.resources.limits.memory=null"], "backend.resources.limits.memory", "set a memory limit"),
    ("prod", ["backend.image.tag=latest"], "backend.image.tag", "prod must pin a version"),
    ("prod", ["frontend.image.tag="], "frontend.image.tag", "image tag is missing"),
    ("dev", ["nginx.image.tag=a:b"], "nginx.image.tag", "give the tag alone"),
    ("prod", ["patroni.replicaCount=1"], "patroni.replicaCount", "at least 2"),
    ("prod", ["redisCluster.masterCount=2"], "redisCluster.masterCount", "at least 3"),
    ("prod", ["redisCluster.replicasPerMaster=0"], "redisCluster.replicasPerMaster", "at least 1 replica"),
    ("prod", ["kafka.replicaCount=2"], "kafka.replicaCount", "prod needs at least 3 brokers"),
    ("dev", ["kafka.config.defaultReplicationFactor=3"], "kafka.config.defaultReplicationFactor", "broker"),
    ("dev", ["backend.autoscling.enabled=true"], "backend.autoscling", "valid keys here: autoscaling,"),
    ("dev", ["typoKey=1"], "typoKey", "unknown key"),
    ("dev", ["profile=staging"], "profile", "must be one of dev, prod"),
    ("dev", ["backend.securityContext.runAsUser=0"], "backend.securityContext.runAsUser", "podSecurityLevel baseline"),
    ("dev", ["podSecurityLevel=open"], "podSecurityLevel", "restricted"),
    ("dev", ["imageRegistry=https://registry.example.com"], "imageRegistry", "without a scheme"),
    ("dev", ["namespace=Bad_Name"], "namespace", "not a valid DNS label"),
    ("dev", ["imagePullSecrets=[Bad]"], "imagePullSecrets[0]", "not a valid DNS label"),
    ("dev", ["redisPassword=short"], "redisPassword", "shorter than 16 characters"),
    ("dev", ["patroni.postgresql.password=hunter2hunter2"], "patroni.postgresql.password", "--secret postgresPassword"),
    ("dev", ["redisCluster.password=hunter2hunter2"], "redisCluster.password", "--secret redisPassword"),
    ("prod", ["backend.autoscaling.enabled=false", "backend.replicaCount=1"], "backend.replicaCount", "at least 2 replicas"),
    ("prod", ["frontend.autoscaling.minReplicas=1"], "frontend.autoscaling.minReplicas", "at least 2 replicas"),
    ("dev", ["backend.env.DB_PASSWORD=hunter2"], "backend.env.DB_PASSWORD", "must not be a plaintext literal"),
    ("dev", ["backend.env={'9LIVES': x}"], "backend.env", "not a valid environment variable name"),
    ("dev", ["backend.secretEnv.JWT_EXPIRY={secret: s, key: k}"], "backend.secretEnv.JWT_EXPIRY", "in both env and secretEnv"),
    ("dev", ["backend.service.port=70000"], "backend.service.port", "less than or equal to 65535"),
    ("dev", ["nginx.service.type=Ingress"], "nginx.service.type", "'ClusterIP', 'NodePort' or 'LoadBalancer'"),
    ("dev", ["nginx.service.httpsPort=443"], "nginx.service.httpsPort", "together"),
    ("dev", ["backend.autoscaling.behavior={}"], "backend.autoscaling.behavior.scaleUp", "is required"),
    (
        "dev",
        ["backend.autoscaling.targetCPUUtilizationPercentage=0"],
        "backend.autoscaling.targetCPUUtilizationPercentage",
        "greater than or equal to 1",
    ),
    (
        "dev",
        [
            "backend.autoscaling.enabled=true",
            "backend.autoscaling.targetCPUUtilizationPercentage=null",
            "backend.autoscaling.targetMemoryUtilizationPercentage=null",
        ],
        "backend.autoscaling.targetCPUUtilizationPercentage",
        "without a CPU or memory target",
    ),
    ("dev", ["backend.replicaCount=-1"], "backend.replicaCount", "greater than or equal to 0"),
    (
        "dev",
        ["kubernetes.renderYamlToDirectory=out", "kubernetes.context=kind"],
        "kubernetes.renderYamlToDirectory",
        "render mode",
    ),
    ("dev", ["patroni.persistence.size=0"], "patroni.persistence.size", "larger than 0"),
    ("dev", ["backend.autoscaling=3"], "backend.autoscaling", "valid dictionary"),
    ("dev", ["stack-without-equals"], "--set", "is not KEY=VALUE"),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "fragment"), INVALID, ids=[row[2] + "|" + row[0] for row in INVALID])
def test_invalid_config_exits_2_naming_the_key(stack, overrides, key, fragment, tmp_path: Path, capsys):
    out = tmp_path / "out"
    argv = ["--stack", stack, "--out", str(out)]
    for override in overrides:
        argv += ["--set", override]

    code = render_tool.main(argv)

    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.startswith(f"ai-infra-matrix:{key}:")]
    assert lines, f"no line names ai-infra-matrix:{key}:\n{stderr}"
    assert any(fragment in line for line in lines), f"{fragment!r} not in {lines}"
    assert "Traceback" not in stderr
    assert not out.exists(), "an invalid config must write nothing"


def test_invalid_config_table_is_large_enough():
    assert len(INVALID) >= 25
    assert len({row[2] for row in INVALID}) >= 25, "each row should exercise a different key"


def test_every_problem_gets_its_own_line(capsys, tmp_path):
    code = render_tool.main(
        ["--stack", "prod", "--out", str(tmp_path), "--set", "backend.image.tag=latest", "--set", "patroni.replicaCount=1"]
    )
    stderr = capsys.readouterr().err.splitlines()
    assert code == 2
    assert any(line.startswith("ai-infra-matrix:backend.image.tag:") for line in stderr)
    assert any(line.startswith("ai-infra-matrix:patroni.replicaCount:") for line in stderr)


def test_render_cli_exit_code_and_stderr_from_a_real_process(tmp_path):
    """The same as the table, through the interpreter a user runs: no traceback."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/render.py"),
            "--stack",
            "prod",
            "--out",
            str(tmp_path / "o"),
            "--set",
            "backend.autoscaling.minReplicas=12",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "ai-infra-matrix:backend.autoscaling.minReplicas:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_plaintext_secret_in_a_stack_file_is_refused(tmp_path):
    (tmp_path / "Pulumi.leaky.yaml").write_text("config:\n  ai-infra-matrix:redisPassword: correct-horse-battery-staple\n")
    raw, secret_keys = stack_file.stack_config("leaky", root=tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_settings(raw, stack="leaky", secret_keys=secret_keys)
    assert any(line.startswith("ai-infra-matrix:redisPassword: is stored in plaintext") for line in caught.value.lines())


def test_encrypted_secret_in_a_stack_file_is_accepted(tmp_path):
    (tmp_path / "Pulumi.sealed.yaml").write_text("config:\n  ai-infra-matrix:redisPassword:\n    secure: v1:abc\n")
    raw, secret_keys = stack_file.stack_config("sealed", root=tmp_path)
    settings = load_settings(raw, stack="sealed", secret_keys=secret_keys)
    assert settings.secrets.redis_password is not None


def test_committed_stack_files_hold_no_plaintext_secret():
    for path in ROOT.glob("Pulumi.*.yaml"):
        raw, secret_keys = stack_file.stack_config(path.name[len("Pulumi.") : -len(".yaml")])
        assert not (set(raw) & set(SECRET_KEYS)) - secret_keys, path


def test_dev_defaults_are_one_node_of_everything_without_hpas():
    settings = load_settings({}, stack="dev")
    assert settings.profile == "dev"
    assert settings.namespace == "ai-infra"
    assert settings.patroni.replica_count == 1
    assert (settings.redis_cluster.master_count, settings.redis_cluster.replicas_per_master) == (1, 0)
    assert settings.kafka.replica_count == 1
    assert not any(app.autoscaling.enabled for app in settings.apps.values())


def test_prod_defaults_are_the_guides_values_prod_topology():
    settings = load_settings({}, stack="prod")
    assert settings.profile == "prod"
    assert settings.namespace == "ai-infra-prod"
    assert settings.patroni.replica_count == 3
    assert (settings.redis_cluster.master_count, settings.redis_cluster.replicas_per_master) == (3, 1)
    assert settings.kafka.replica_count == 3
    expected = {"backend": (2, 10), "frontend": (2, 5), "nginx": (2, 5)}
    for name, app in settings.apps.items():
        assert app.autoscaling.enabled
        assert (app.autoscaling.min_replicas, app.autoscaling.max_replicas) == expected[name]
        assert app.autoscaling.target_cpu_utilization_percentage == 70
        assert app.autoscaling.target_memory_utilization_percentage == 80
        assert app.autoscaling.behavior is not None
        assert app.autoscaling.behavior.scale_down.stabilization_window_seconds == 300
    assert settings.nginx.service.type == "LoadBalancer"


def test_profile_follows_the_stack_name_unless_set():
    assert load_settings({}, stack="prod-eu").profile == "prod"
    assert load_settings({}, stack="staging").profile == "dev"
    assert load_settings({"profile": "prod"}, stack="staging").production


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", "0.25"),
        ("1", "1"),
        ("2Gi", str(2 * 2**30)),
        ("512Mi", str(512 * 2**20)),
        ("1e3", "1000"),
        ("1.5G", "1500000000"),
        ("100k", "100000"),
    ],
)
def test_quantities_parse_as_kubernetes_does(text, value):
    assert parse_quantity(text) == parse_quantity(value)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2000m", "2"),
        ("1000m", "1"),
        ("250m", "250m"),
        ("0.5", "500m"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1500000", "1500k"),
        ("1e3", "1e3"),
        ("0", "0"),
    ],
)
def test_quantities_are_kept_in_the_canonical_form_kubernetes_writes_back(text, canonical):
    """The provider and the API server rewrite 2000m as 2; so does the program, or every
    preview would show the spelling flipping."""
    assert canonical_quantity(text) == canonical
    resources = {"requests": {"cpu": text}, "limits": {"cpu": text, "memory": "4Gi"}}
    settings = load_settings({"backend": {"resources": resources}}, stack="dev")
    assert settings.backend.resources.limits.cpu == canonical


# --- one source of truth for defaults ---------------------------------------------------


def _leaf_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            paths += _leaf_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


def _without(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    trimmed = copy.deepcopy(tree)
    node = trimmed
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return trimmed


LAYERS = {"_COMMON": "dev", "_PROD": "prod"}


@pytest.mark.parametrize(
    ("layer", "path"),
    [(layer, path) for layer in LAYERS for path in _leaf_paths(getattr(defaults, layer))],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else value,
)
def test_every_value_in_defaults_py_is_one_the_models_do_not_already_have(monkeypatch, layer, path):
    """settings/defaults.py only fills what a model leaves without a default, or changes
    it: a value there that equals the model's default (or the dev value beneath a prod
    one) would shadow it, and an edit of the model default would silently do nothing."""
    stack = LAYERS[layer]
    baseline = load_settings({}, stack=stack)
    monkeypatch.setattr(defaults, layer, _without(getattr(defaults, layer), path))
    try:
        trimmed = load_settings({}, stack=stack)
    except SettingsError:
        return  # the model needs this value: defaults.py is its only source
    assert trimmed != baseline, f"{layer} restates {'.'.join(path)}: the value beneath it is already the same"


# --- a switched-off part is checked for its flag only ------------------------------------

_BROKEN_WHEN_ON = {
    "patroni": ["patroni.replicaCount=0", "patroni.image.tag=latest", "patroni.noSuchKey=1"],
    "redisCluster": ["redisCluster.masterCount=2", "redisCluster.image.tag=latest"],
    "redisCluster.exporter": ["redisCluster.exporter.image.tag=latest", "redisCluster.exporter.resources.requests.cpu=9"],
    "kafka": ["kafka.replicaCount=2", "kafka.config.minInsyncReplicas=9"],
    "kafka.ui": ["kafka.ui.username=", "kafka.ui.image.tag=latest"],
    "backend": ["backend.autoscaling.minReplicas=12", "backend.env.DB_PASSWORD=plain"],
    "backup": ["backup.postgres.schedule=never", "backup.destination=s3"],
    "backup.redis": ["backup.redis.schedule=never"],
    "monitoring.dashboards": ["monitoring.enabled=true", "monitoring.dashboards.label=not a label"],
    "networkPolicy": ["networkPolicy.apiServerCidrs=[not-a-cidr]"],
}


def _config(*overrides: str) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for override in overrides:
        key, value = stack_file.parse_override(override)
        stack_file.set_path(raw, key.split("."), value)
    return raw


@pytest.mark.parametrize("part", sorted(_BROKEN_WHEN_ON))
def test_a_switched_off_part_is_not_checked_beyond_its_flag(part):
    broken = _BROKEN_WHEN_ON[part]
    with pytest.raises(SettingsError):
        load_settings(_config(*broken), stack="prod")
    settings = load_settings(_config(*broken, f"{part}.enabled=false"), stack="prod")
    node: Any = settings
    for name in part.split("."):
        node = getattr(node, {"redisCluster": "redis_cluster", "networkPolicy": "network_policy"}.get(name, name))
    assert node.enabled is False


def test_the_enabled_flag_itself_is_still_checked():
    with pytest.raises(SettingsError, match=r"patroni\.enabled"):
        load_settings(_config("patroni.enabled=maybe"), stack="dev")
