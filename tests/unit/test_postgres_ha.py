"""PostgresHA under Pulumi mocks, for dev and prod: the offline invariants of a Patroni
cluster on Kubernetes (ConfigMaps as DCS, RBAC, Services by role, volumes, probes), the
settings rules, the wiring and outputs."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from components.k8s import checksum
from settings import SettingsError
from tests.conftest import ROOT, Objects, render_stack
from tests.unit import patroni_scripts

NAME = "ai-infra-patroni"
SCOPE = "ai-infra-patroni"

ObjectsOf = Callable[..., Objects]


def sts(objects: Objects) -> dict[str, Any]:
    return objects.get("StatefulSet", NAME)


def pod(objects: Objects) -> dict[str, Any]:
    return sts(objects)["spec"]["template"]["spec"]


def container(objects: Objects) -> dict[str, Any]:
    (only,) = pod(objects)["containers"]
    return only


def env_of(objects: Objects) -> list[dict[str, Any]]:
    return container(objects)["env"]


def patroni_yml(objects: Objects) -> dict[str, Any]:
    return yaml.safe_load(objects.get("ConfigMap", f"{NAME}-files")["data"]["patroni.yml"])


def template_labels(objects: Objects) -> dict[str, str]:
    return sts(objects)["spec"]["template"]["metadata"]["labels"]


def is_subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return all(big.get(key) == value for key, value in small.items())


# --- RBAC ------------------------------------------------------------------------------


def test_role_has_exactly_the_configmaps_mode_rules_and_no_wildcards(objects_of: ObjectsOf, stack: str) -> None:
    rules = objects_of(stack).get("Role", NAME)["rules"]
    as_set = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    expected = {("", "pods", verb) for verb in ("get", "list", "watch", "patch", "update")}
    expected |= {("", "configmaps", verb) for verb in ("get", "list", "watch", "create", "patch", "update")}
    assert as_set == expected
    assert not any("*" in item for triple in as_set for item in triple)
    assert all("resourceNames" not in rule and "nonResourceURLs" not in rule for rule in rules)


def test_role_binding_binds_the_statefulsets_service_account_in_its_namespace(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    binding = objects.get("RoleBinding", NAME)
    account = pod(objects)["serviceAccountName"]
    namespace = sts(objects)["metadata"]["namespace"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    assert objects.get("ServiceAccount", account)["metadata"]["namespace"] == namespace
    assert pod(objects)["automountServiceAccountToken"] is True


def test_no_api_service_bypass_and_no_cluster_role(objects_of: ObjectsOf, stack: str) -> None:
    """bypass_api_service makes Patroni read the API server's own Endpoints, which needs a
    ClusterRole; the program grants none, so the bypass stays off (the old check, 'bypass on
    exactly when a ClusterRole exists', compared False with False)."""
    objects = objects_of(stack)
    assert patroni_yml(objects)["kubernetes"]["bypass_api_service"] is False
    assert objects.names("ClusterRole") == [] and objects.names("ClusterRoleBinding") == []


# --- labels ------------------------------------------------------------------------------


def test_pod_labels_cover_patronis_labels_and_scope_label(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    config = patroni_yml(objects)
    kubernetes = config["kubernetes"]
    assert config["scope"] == SCOPE
    assert kubernetes["use_endpoints"] is False
    assert is_subset({**kubernetes["labels"], kubernetes["scope_label"]: SCOPE}, template_labels(objects))


def test_statefulset_selector_is_within_the_template_labels_and_has_no_role(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    selector = sts(objects)["spec"]["selector"]["matchLabels"]
    role_label = patroni_yml(objects)["kubernetes"]["role_label"]
    assert is_subset(selector, template_labels(objects))
    assert role_label not in selector
    assert role_label not in template_labels(objects)  # Patroni sets it on the pod


def test_pdb_spreading_and_service_selectors_match_the_pods(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    labels = template_labels(objects)
    spec = pod(objects)
    anti = spec["affinity"]["podAntiAffinity"]
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [
        term["podAffinityTerm"] for term in anti["preferredDuringSchedulingIgnoredDuringExecution"]
    ]
    selectors = [term["labelSelector"]["matchLabels"] for term in terms]
    selectors += [constraint["labelSelector"]["matchLabels"] for constraint in spec["topologySpreadConstraints"]]
    pdb = objects.find("PodDisruptionBudget", f"{NAME}-pdb")
    if pdb:
        selectors.append(pdb["spec"]["selector"]["matchLabels"])
    role_label = patroni_yml(objects)["kubernetes"]["role_label"]
    for service in (NAME, f"{NAME}-replica", f"{NAME}-headless"):
        selector = dict(objects.get("Service", service)["spec"]["selector"])
        selector.pop(role_label, None)
        selectors.append(selector)
    for selector in selectors:
        assert selector, "an empty selector matches everything"
        assert is_subset(selector, labels), f"{selector} matches no Patroni pod ({labels})"


# --- Services ------------------------------------------------------------------------------


def test_primary_and_replica_services_select_on_the_configured_role_values(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    kubernetes = patroni_yml(objects)["kubernetes"]
    role = kubernetes["role_label"]
    assert kubernetes["leader_label_value"] == "primary"  # Patroni >= 4 writes primary, never master
    primary = objects.get("Service", NAME)["spec"]
    replica = objects.get("Service", f"{NAME}-replica")["spec"]
    assert primary["selector"][role] == kubernetes["leader_label_value"]
    assert replica["selector"][role] == kubernetes["follower_label_value"]
    for spec in (primary, replica):
        assert spec["type"] == "ClusterIP"
        assert [port["port"] for port in spec["ports"]] == [5432]


def test_headless_service_is_the_statefulsets_service_with_both_ports(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    headless = objects.get("Service", sts(objects)["spec"]["serviceName"])["spec"]
    assert headless["clusterIP"] == "None"
    assert {port["port"] for port in headless["ports"]} == {5432, 8008}
    container_ports = {port["name"]: port["containerPort"] for port in container(objects)["ports"]}
    assert container_ports == {"postgresql": 5432, "patroni": 8008}
    assert all(port["targetPort"] in container_ports for port in headless["ports"])


def test_no_pulumi_object_is_one_patroni_owns(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    owned = {f"{SCOPE}-{suffix}" for suffix in ("leader", "config", "sync", "failover")}
    assert not [obj for obj in objects.all if obj["metadata"]["name"] in owned]
    assert not objects.of_kind("Endpoints")
    assert not objects.of_kind("EndpointSlice")


# --- env ----------------------------------------------------------------------------------


def test_name_namespace_and_pod_ip_come_from_field_refs(objects_of: ObjectsOf, stack: str) -> None:
    refs = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in env_of(objects_of(stack))
        if "fieldRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "PATRONI_NAME": "metadata.name",
        "PATRONI_KUBERNETES_NAMESPACE": "metadata.namespace",
        "PATRONI_KUBERNETES_POD_IP": "status.podIP",
    }


def test_env_references_are_defined_earlier(objects_of: ObjectsOf, stack: str) -> None:
    defined: set[str] = set()
    references = 0
    for entry in env_of(objects_of(stack)):
        for reference in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry.get("value", "")):
            references += 1
            assert reference in defined, f"{entry['name']} uses $({reference}) before it is defined"
        defined.add(entry["name"])
    assert references >= 2  # the connect addresses are built from the pod IP


def test_never_patroni_configuration_and_only_per_pod_values_in_env(objects_of: ObjectsOf, stack: str) -> None:
    names = [entry["name"] for entry in env_of(objects_of(stack))]
    assert "PATRONI_CONFIGURATION" not in names
    assert len(names) == len(set(names))
    per_pod = {
        "PATRONI_NAME",
        "PATRONI_KUBERNETES_NAMESPACE",
        "PATRONI_KUBERNETES_POD_IP",
        "PATRONI_POSTGRESQL_CONNECT_ADDRESS",
        "PATRONI_RESTAPI_CONNECT_ADDRESS",
        "PATRONI_SUPERUSER_PASSWORD",
        "PATRONI_REPLICATION_PASSWORD",
        "PATRONI_REWIND_PASSWORD",
    }
    assert {name for name in names if name.startswith("PATRONI_")} == per_pod


def test_every_secret_key_ref_exists(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    secrets = {
        secret["metadata"]["name"]: secret.get("stringData", {}) | secret.get("data", {}) for secret in objects.of_kind("Secret")
    }
    refs = [
        entry["valueFrom"]["secretKeyRef"]
        for _, template in objects.pod_templates()
        for spec_container in template["spec"]["containers"]
        for entry in spec_container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    ]
    patroni_refs = [e for e in env_of(objects) if "secretKeyRef" in e.get("valueFrom", {})]
    assert len(patroni_refs) == 4
    for ref in refs:
        assert ref["name"] in secrets, f"Secret {ref['name']} is not rendered"
        assert secrets[ref["name"]].get(ref["key"]), f"Secret {ref['name']} has no key {ref['key']}"


def test_passwords_never_appear_in_the_config_map_or_env_literals(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    passwords = list(objects.get("Secret", f"{NAME}-credentials")["stringData"].values())
    assert len(passwords) == 4 and all(len(p) >= 16 for p in passwords)
    files = "".join(objects.get("ConfigMap", f"{NAME}-files")["data"].values())
    literals = "".join(entry.get("value", "") for entry in env_of(objects))
    for password in passwords:
        assert password not in files and password not in literals


def test_configured_superuser_and_replication_passwords_are_used(objects_of: ObjectsOf) -> None:
    superuser, replication = "s" * 20, "r" * 20
    objects = objects_of("prod", f"postgresPassword={superuser}", f"replicationPassword={replication}")
    data = objects.get("Secret", f"{NAME}-credentials")["stringData"]
    assert data["superuser-password"] == superuser
    assert data["replication-password"] == replication


def test_data_dir_is_strictly_below_the_data_volume_mount(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    data_dir = Path(patroni_yml(objects)["postgresql"]["data_dir"])
    mounts = {mount["name"]: Path(mount["mountPath"]) for mount in container(objects)["volumeMounts"]}
    assert mounts["pgdata"] in data_dir.parents
    assert data_dir != mounts["pgdata"]


def test_patronictl_finds_the_mounted_config_file(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    env = {entry["name"]: entry.get("value", "") for entry in env_of(objects)}
    config_file = Path(env["PATRONICTL_CONFIG_FILE"])
    mounts = {Path(mount["mountPath"]): mount["name"] for mount in container(objects)["volumeMounts"]}
    volume = next(v for v in pod(objects)["volumes"] if v["name"] == mounts[config_file.parent])
    assert volume["configMap"]["name"] == f"{NAME}-files"
    assert config_file.name in objects.get("ConfigMap", f"{NAME}-files")["data"]
    assert container(objects)["command"] == ["patroni", str(config_file)]
    post_bootstrap = Path(patroni_yml(objects)["bootstrap"]["post_bootstrap"])
    assert post_bootstrap.parent == config_file.parent
    assert post_bootstrap.name in objects.get("ConfigMap", f"{NAME}-files")["data"]


# --- timing and termination ------------------------------------------------------------------


def test_dcs_timing_rule_and_minimums_hold(objects_of: ObjectsOf, stack: str) -> None:
    dcs = patroni_yml(objects_of(stack))["bootstrap"]["dcs"]
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["ttl"] >= 20 and dcs["retry_timeout"] >= 3
    assert dcs["failsafe_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] is True and dcs["postgresql"]["use_slots"] is True
    assert dcs["check_timeline"] is True


def test_probes_use_patronis_endpoints_and_liveness_acts_after_about_ttl(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    ttl = patroni_yml(objects)["bootstrap"]["dcs"]["ttl"]
    spec_container = container(objects)
    readiness, liveness = spec_container["readinessProbe"], spec_container["livenessProbe"]
    assert readiness["httpGet"] == {"path": "/readiness", "port": "patroni"}
    assert liveness["httpGet"] == {"path": "/liveness", "port": "patroni"}
    window = liveness["periodSeconds"] * liveness["failureThreshold"]
    assert abs(window - ttl) < liveness["periodSeconds"], (window, ttl)


def test_long_grace_period_and_no_pg_ctl_pre_stop(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    assert pod(objects)["terminationGracePeriodSeconds"] >= 60
    pre_stop = container(objects).get("lifecycle", {}).get("preStop")
    assert pre_stop is None or "pg_ctl" not in str(pre_stop)


# --- availability --------------------------------------------------------------------------


def test_prod_has_three_members_a_pdb_and_required_spreading(objects_of: ObjectsOf) -> None:
    objects = objects_of("prod")
    assert sts(objects)["spec"]["replicas"] == 3
    assert objects.get("PodDisruptionBudget", f"{NAME}-pdb")["spec"]["maxUnavailable"] == 1
    anti = pod(objects)["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert [c["topologyKey"] for c in pod(objects)["topologySpreadConstraints"]] == ["topology.kubernetes.io/zone"]
    dcs = patroni_yml(objects)["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["synchronous_mode_strict"] is False


def test_dev_has_one_member_no_pdb_and_asynchronous_replication(objects_of: ObjectsOf) -> None:
    objects = objects_of("dev")
    assert sts(objects)["spec"]["replicas"] == 1
    assert objects.find("PodDisruptionBudget", f"{NAME}-pdb") is None
    assert patroni_yml(objects)["bootstrap"]["dcs"]["synchronous_mode"] is False


def test_scaling_prod_to_five_changes_only_the_statefulset_replicas(objects_of: ObjectsOf) -> None:
    before, after = objects_of("prod"), objects_of("prod", "patroni.replicaCount=5")
    assert len(before.all) == len(after.all)
    changed = [(a["kind"], a["metadata"]["name"]) for a, b in zip(before.all, after.all, strict=True) if a != b]
    assert changed == [("StatefulSet", NAME)]
    a, b = sts(before), copy.deepcopy(sts(after))  # renders are cached: never modify one
    assert b["spec"]["replicas"] == 5
    b["spec"]["replicas"] = a["spec"]["replicas"]
    assert a == b


# --- pod, image and config -----------------------------------------------------------------


def test_pod_meets_the_restricted_profile_with_the_images_uid(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    dockerfile = (ROOT / "images/patroni/Dockerfile").read_text()
    uid = int(re.search(r"ARG POSTGRES_UID=(\d+)", dockerfile)[1])  # type: ignore[index]
    security = pod(objects)["securityContext"]
    assert security["runAsNonRoot"] is True and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["runAsUser"] == security["fsGroup"] == uid
    assert security["fsGroupChangePolicy"] == "OnRootMismatch"
    context = container(objects)["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert pod(objects)["enableServiceLinks"] is False


def test_image_and_conformance_run_the_same_versions(objects_of: ObjectsOf, stack: str) -> None:
    dockerfile = (ROOT / "images/patroni/Dockerfile").read_text()
    install = (ROOT / "tools/ci/install-postgres.sh").read_text()
    for name in ("PATRONI_VERSION", "PSYCOPG_VERSION"):
        image = re.search(rf"ARG {name}=(\S+)", dockerfile)
        tested = re.search(rf'{name}="(\S+)"', install)
        assert image and tested and image[1] == tested[1], name
    major = re.search(r"ARG PG_MAJOR=(\d+)", dockerfile)
    assert major and f"/usr/lib/postgresql/{major[1]}/bin" == patroni_yml(objects_of(stack))["postgresql"]["bin_dir"]
    assert f"postgresql/{major[1]}/bin" in install
    image = container(objects_of(stack))["image"]
    assert image.endswith(":" + re.search(r"ARG PATRONI_VERSION=(\S+)", dockerfile)[1] + f"-pg{major[1]}")  # type: ignore[index]


def test_config_checksum_annotation_follows_the_files(objects_of: ObjectsOf) -> None:
    objects = objects_of("prod")
    files = objects.get("ConfigMap", f"{NAME}-files")["data"]
    annotation = sts(objects)["spec"]["template"]["metadata"]["annotations"]["ai-infra-matrix/config-checksum"]
    assert annotation == checksum(*(files[key] for key in sorted(files)))
    changed = objects_of("prod", "patroni.ttl=30")
    assert sts(changed)["spec"]["template"]["metadata"]["annotations"]["ai-infra-matrix/config-checksum"] != annotation


def test_patroni_yml_carries_the_settings(objects_of: ObjectsOf) -> None:
    objects = objects_of("prod", "patroni.postgresql.parameters.max_connections=321", "patroni.ttl=40", "patroni.loopWait=10")
    config = patroni_yml(objects)
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (40, 10, 5)
    assert dcs["postgresql"]["parameters"]["max_connections"] == 321
    assert dcs["postgresql"]["parameters"]["shared_buffers"] == "256MB"  # the other defaults stay
    assert "data-checksums" in config["bootstrap"]["initdb"]
    assert config["postgresql"]["pg_hba"] == list(render_stack("prod").settings.patroni.postgresql.pg_hba)
    assert config["postgresql"]["authentication"]["superuser"] == {"username": "postgres"}
    assert "password" not in str(config["postgresql"]["authentication"])


def test_post_bootstrap_creates_the_application_user_and_database(objects_of: ObjectsOf, stack: str) -> None:
    script = objects_of(stack).get("ConfigMap", f"{NAME}-files")["data"]["post-bootstrap.sh"]
    assert "CREATE ROLE %I LOGIN', 'ai_infra_db'" in script
    assert "CREATE DATABASE %I OWNER %I', 'ai_infra_db', 'ai_infra_db'" in script
    assert "\\getenv app_password AI_INFRA_APP_PASSWORD" in script
    assert "@{" not in script and "@{" not in objects_of(stack).get("ConfigMap", f"{NAME}-files")["data"]["patroni.yml"]


def _role_change_callback(objects: Objects, api: Callable[..., Any] | None = None) -> Any:
    """The rendered on-role-change.py as a module, its API calls answered by ``api`` (the
    script's own client when None)."""
    module = patroni_scripts.load(objects, "on-role-change.py")
    if api is not None:
        module.api = api
    return module


def test_a_new_leader_takes_the_leader_label_off_every_other_pod_that_still_has_it(
    objects_of: ObjectsOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = objects_of("prod")
    command = patroni_yml(objects)["postgresql"]["callbacks"]["on_role_change"]
    assert command == "python3 /etc/patroni/on-role-change.py"
    calls: list[tuple[str, str, Any]] = []
    stale = ["ai-infra-patroni-0", "ai-infra-patroni-2", "ai-infra-patroni-1"]

    def api(method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        calls.append((method, path, body))
        assert content_type == ("application/json-patch+json" if method == "PATCH" else "application/json")
        return {"items": [{"metadata": {"name": name}} for name in stale]} if method == "GET" else {}

    monkeypatch.setattr("socket.gethostname", lambda: "ai-infra-patroni-1")
    callback = _role_change_callback(objects, api)
    callback.namespace = lambda: "ai-infra-prod"
    for role in ("replica", "demoted"):
        assert callback.main(["on-role-change.py", "on_role_change", role, SCOPE]) == 0
    assert calls == []  # only a promotion acts
    assert callback.main(["on-role-change.py", "on_role_change", "primary", SCOPE]) == 0
    (method, path, _), *patches = calls
    selector = "app.kubernetes.io/instance=ai-infra,app.kubernetes.io/name=patroni,role=primary"
    assert (method, path) == ("GET", "/api/v1/namespaces/ai-infra-prod/pods?labelSelector=" + quote(selector))
    label = "/metadata/labels/role"
    assert patches == [
        ("PATCH", f"/api/v1/namespaces/ai-infra-prod/pods/{pod}",
         [{"op": "test", "path": label, "value": "primary"}, {"op": "remove", "path": label}])
        for pod in ("ai-infra-patroni-0", "ai-infra-patroni-2")
    ]  # fmt: skip


def test_the_role_change_callback_never_fails_patroni(objects_of: ObjectsOf, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(method: str, path: str, body: Any = None, content_type: str = "") -> Any:
        raise OSError("connection refused")

    promoted = ["on-role-change.py", "on_role_change", "primary", SCOPE]
    assert _role_change_callback(objects_of("prod"), unreachable).main(promoted) == 0
    # outside a pod (the conformance tier's loopback members): no API server to ask
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert _role_change_callback(objects_of("prod")).main(promoted) == 0


# --- wiring and outputs ---------------------------------------------------------------------


def test_backend_gets_the_database_from_the_primary_service_and_the_secret(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    namespace = sts(objects)["metadata"]["namespace"]
    backend = objects.get("Deployment", "ai-infra-backend")["spec"]["template"]["spec"]["containers"][0]["env"]
    env = {entry["name"]: entry for entry in backend}
    assert env["DB_HOST"]["value"] == f"{NAME}.{namespace}.svc.cluster.local"
    assert env["DB_PORT"]["value"] == "5432"
    assert env["DB_NAME"]["value"] == "ai_infra_db"
    assert env["DB_USER"]["value"] == "ai_infra_db"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": f"{NAME}-credentials", "key": "app-password"}


def test_stack_outputs(stack: str) -> None:
    rendered = render_stack(stack)
    namespace = rendered.settings.namespace
    outputs = rendered.outputs
    assert outputs["postgresPrimaryHost"] == f"{NAME}.{namespace}.svc.cluster.local"
    replica = f"{NAME}-replica" if stack == "prod" else NAME
    assert outputs["postgresReplicaHost"] == f"{replica}.{namespace}.svc.cluster.local"
    assert outputs["postgresPort"] == 5432
    assert outputs["postgresDatabase"] == "ai_infra_db"
    assert outputs["postgresUser"] == "ai_infra_db"
    assert "postgresPassword" in rendered.secret_outputs
    assert outputs["postgresPassword"] == "[secret]"


def test_disabled_patroni_registers_nothing_and_keeps_the_output_keys() -> None:
    rendered = render_stack("dev", "patroni.enabled=false")
    assert not [obj for obj in rendered.objects if "patroni" in obj["metadata"]["name"]]
    assert rendered.outputs["postgresPrimaryHost"] == ""
    assert set(render_stack("dev").outputs) == set(rendered.outputs)


# --- settings rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [
        ("prod", ["patroni.replicaCount=1"], "patroni.replicaCount"),
        ("dev", ["patroni.synchronousMode=on"], "patroni.synchronousMode"),
        ("prod", ["patroni.synchronousNodeCount=3"], "patroni.synchronousNodeCount"),
        ("prod", ["patroni.ttl=20", "patroni.loopWait=10", "patroni.retryTimeout=10"], "patroni.ttl"),
        ("dev", ["patroni.ttl=15", "patroni.loopWait=3", "patroni.retryTimeout=3"], "patroni.ttl"),
        ("dev", ["patroni.retryTimeout=2"], "patroni.retryTimeout"),
        ("dev", ["patroni.postgresql.pgHba=[]"], "patroni.postgresql.pgHba"),
        ("dev", ["patroni.postgresql.appUsername=postgres"], "patroni.postgresql"),
    ],
)
def test_bad_patroni_settings_are_refused_with_the_key(stack: str, overrides: list[str], key: str) -> None:
    with pytest.raises(SettingsError) as error:
        render_stack(stack, *overrides)
    keys = [problem.key for problem in error.value.problems]
    assert key in keys, error.value.lines()


def test_the_guides_scale_example_and_quorum_mode_are_accepted() -> None:
    assert sts(Objects(render_stack("prod", "patroni.replicaCount=5").objects))["spec"]["replicas"] == 5
    config = patroni_yml(Objects(render_stack("prod", "patroni.synchronousMode=quorum").objects))
    assert config["bootstrap"]["dcs"]["synchronous_mode"] == "quorum"
