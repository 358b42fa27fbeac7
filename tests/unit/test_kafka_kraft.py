"""KafkaKRaft under Pulumi mocks: the invariants of a static KRaft quorum (voters fixed,
brokers scaling apart from them, node ids, listeners, PDB math), the
settings rules, and the guide's names."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import kafka_kraft
from settings import SettingsError
from settings.kafka import valid_cluster_id
from tests.conftest import Objects, env, objects, render_stack
from tools import render as render_tool

RELEASE = "ai-infra"
BROKERS = f"{RELEASE}-kafka"
CONTROLLERS = f"{RELEASE}-kafka-controller"
ROOT = Path(__file__).resolve().parents[2]
CONTROLLER_OBJECTS = [
    ("ConfigMap", f"{CONTROLLERS}-config"),
    ("StatefulSet", CONTROLLERS),
    ("Service", f"{CONTROLLERS}-headless"),
    ("PodDisruptionBudget", f"{CONTROLLERS}-pdb"),
    ("Secret", f"{RELEASE}-kafka-kraft"),
]


def properties(objs: Objects, statefulset: str) -> dict[str, str]:
    text = config_map(objs, statefulset)["server.properties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def config_map(objs: Objects, statefulset: str) -> dict[str, str]:
    pod = objs.get("StatefulSet", statefulset)["spec"]["template"]["spec"]
    name = next(volume["configMap"]["name"] for volume in pod["volumes"] if volume["name"] == "config")
    return objs.get("ConfigMap", name)["data"]


def kafka_container(objs: Objects, statefulset: str) -> dict[str, Any]:
    return objs.get("StatefulSet", statefulset)["spec"]["template"]["spec"]["containers"][0]


def kafka_statefulsets(stack: str) -> list[str]:
    return [BROKERS] if stack == "dev" else [CONTROLLERS, BROKERS]


def node_ids(objs: Objects, statefulset: str) -> list[int]:
    sts = objs.get("StatefulSet", statefulset)
    offset = int(env(kafka_container(objs, statefulset))["KAFKA_NODE_ID_OFFSET"])
    return [offset + ordinal for ordinal in range(sts["spec"]["replicas"])]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def problems(stack: str, *overrides: str) -> list[str]:
    with pytest.raises(SettingsError) as error:
        render_tool.render(stack, overrides)
    return error.value.lines()


def listener_names(value: str) -> list[str]:
    return [endpoint.split("://")[0] for endpoint in value.split(",") if endpoint]


def listener_ports(value: str) -> list[int]:
    return [int(endpoint.rsplit(":", 1)[1]) for endpoint in value.split(",") if endpoint]


# --- topology and names -----------------------------------------------------------------


def test_prod_has_dedicated_controllers_and_three_brokers():
    objs = objects("prod")
    assert objs.get("StatefulSet", CONTROLLERS)["spec"]["replicas"] == 3
    assert objs.get("StatefulSet", BROKERS)["spec"]["replicas"] == 3
    assert properties(objs, CONTROLLERS)["process.roles"] == "controller"
    assert properties(objs, BROKERS)["process.roles"] == "broker"


def test_dev_is_one_combined_node_named_as_in_the_guide():
    objs = objects("dev")
    assert [obj["metadata"]["name"] for obj in objs.of_kind("StatefulSet") if "kafka" in obj["metadata"]["name"]] == [BROKERS]
    assert objs.get("StatefulSet", BROKERS)["spec"]["replicas"] == 1
    props = properties(objs, BROKERS)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"0@{BROKERS}-0.{BROKERS}-headless.ai-infra.svc.cluster.local:9093"
    assert node_ids(objs, BROKERS) == [0]


def test_guide_command_works_in_the_pod(stack):
    """`kubectl exec ai-infra-kafka-0 -- kafka-broker-api-versions.sh --bootstrap-server
    localhost:9092`: the pod serves 9092 on every address and has the tools on PATH."""
    objs = objects(stack)
    props = properties(objs, BROKERS)
    assert "BROKER://:9092" in props["listeners"].split(",")
    assert env(kafka_container(objs, BROKERS))["PATH"].startswith("/opt/kafka/bin:")


def test_image_is_the_projects_kafka_pinned_to_the_conformance_jars(stack):
    pom = (ROOT / "tools" / "ci" / "kafka-pom.xml").read_text()
    version = _group(r"<kafka.version>([^<]+)</kafka.version>", pom)
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        assert kafka_container(objs, sts)["image"] == f"ai-infra-kafka:{version}"


def test_no_latest_tags(stack):
    for _, template in objects(stack).pod_templates():
        for container in template["spec"]["containers"]:
            if "kafka" in container["name"]:
                assert ":" in container["image"] and not container["image"].endswith(":latest"), container["image"]


# --- quorum ---------------------------------------------------------------------------------


@pytest.mark.parametrize("controllers", [3, 5])
def test_voters_have_one_entry_per_controller_identical_everywhere(controllers):
    objs = objects("prod", f"kafka.controller.replicaCount={controllers}")
    expected = ",".join(
        f"{i}@{CONTROLLERS}-{i}.{CONTROLLERS}-headless.ai-infra-prod.svc.cluster.local:9093" for i in range(controllers)
    )
    for sts in (CONTROLLERS, BROKERS):
        assert properties(objs, sts)["controller.quorum.voters"] == expected
        assert "controller.quorum.bootstrap.servers" not in properties(objs, sts)  # static quorum, pinned


def test_broker_count_never_changes_what_controllers_read():
    three, five = objects("prod"), objects("prod", "kafka.replicaCount=5")
    for kind, name in CONTROLLER_OBJECTS:
        assert yaml.safe_dump(three.get(kind, name)) == yaml.safe_dump(five.get(kind, name)), f"{kind} {name}"
    assert five.get("StatefulSet", BROKERS)["spec"]["replicas"] == 5


def test_node_ids_unique_and_brokers_never_voters():
    objs = objects("prod", "kafka.replicaCount=5", "kafka.controller.replicaCount=5")
    controllers, brokers = node_ids(objs, CONTROLLERS), node_ids(objs, BROKERS)
    voters = [int(v.split("@")[0]) for v in properties(objs, BROKERS)["controller.quorum.voters"].split(",")]
    assert len(set(controllers + brokers)) == len(controllers + brokers)
    assert set(controllers) == set(voters)
    assert not set(brokers) & set(voters)


def test_listeners(stack):
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        props = properties(objs, sts)
        roles = props["process.roles"].split(",")
        names = listener_names(props["listeners"])
        mapped = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
        controller_names = props["controller.listener.names"].split(",")
        assert set(names) <= set(mapped), "every listener name is mapped"
        assert set(controller_names) <= set(mapped)
        assert len(set(listener_ports(props["listeners"]))) == len(names), "ports are unique"
        if "controller" in roles:
            assert set(controller_names) <= set(names)
        else:
            assert not set(controller_names) & set(names)
        if "broker" in roles:
            assert props["inter.broker.listener.name"] in names
            advertised = listener_names(props["advertised.listeners"])
            assert not set(controller_names) & set(advertised)
            assert "@ADVERTISED_HOST@" in props["advertised.listeners"]
        else:
            assert "advertised.listeners" not in props
            assert "KAFKA_ADVERTISED_HOST" not in env(kafka_container(objs, sts))


def test_node_id_and_host_are_filled_per_pod(stack):
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        assert properties(objs, sts)["node.id"] == "@NODE_ID@"
        variables = env(kafka_container(objs, sts))
        assert variables["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    expected_offset = "100" if stack == "prod" else "0"
    assert env(kafka_container(objs, BROKERS))["KAFKA_NODE_ID_OFFSET"] == expected_offset
    assert env(kafka_container(objs, BROKERS))["KAFKA_ADVERTISED_HOST"] == (
        f"$(POD_NAME).{BROKERS}-headless.{objs.get('StatefulSet', BROKERS)['metadata']['namespace']}.svc.cluster.local"
    )


def test_config_maps_carry_the_real_files(stack):
    objs = objects(stack)
    entrypoint = (ROOT / "components" / "files" / "kafka" / "entrypoint.sh").read_text()
    for sts in kafka_statefulsets(stack):
        assert config_map(objs, sts)["entrypoint.sh"] == entrypoint
        assert kafka_container(objs, sts)["command"] == ["/bin/bash", "/etc/kafka/rendered/entrypoint.sh"]


def test_every_kafka_config_key_is_rendered():
    props = properties(objects("prod"), BROKERS)
    from settings.kafka import KafkaConfigSettings

    for name in KafkaConfigSettings.model_fields:
        assert name.replace("_", ".") in props, name


def test_prod_safety_settings_in_every_role():
    objs = objects("prod")
    for sts in (CONTROLLERS, BROKERS):
        props = properties(objs, sts)
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["log.retention.hours"] == "168"
        assert props["num.partitions"] == "3"


def test_dev_internal_topics_fit_one_broker():
    props = properties(objects("dev"), BROKERS)
    for key in ("default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "transaction.state.log.min.isr"):  # fmt: skip
        assert props[key] == "1", key


# --- cluster id ----------------------------------------------------------------------------


def test_cluster_id_comes_from_the_secret_and_is_stable(stack):
    first = render_tool.render(stack)
    second = render_tool.render(stack)
    ids = [Objects(r.objects).get("Secret", f"{RELEASE}-kafka-kraft")["stringData"]["cluster-id"] for r in (first, second)]
    assert ids[0] == ids[1]
    assert valid_cluster_id(ids[0])
    assert len(base64.urlsafe_b64decode(ids[0] + "==")) == 16
    objs = Objects(first.objects)
    for sts in kafka_statefulsets(stack):
        assert env(kafka_container(objs, sts))["CLUSTER_ID"] == {
            "secretKeyRef": {"name": f"{RELEASE}-kafka-kraft", "key": "cluster-id"}
        }


def test_leading_dash_is_remapped():
    raw = bytes([0xF8]) + bytes(15)  # base64url starts with '-'
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert text.startswith("-")
    assert valid_cluster_id(kafka_kraft.kafka_uuid(text))
    assert not valid_cluster_id(text)
    assert kafka_kraft.kafka_uuid("AAAAAAAAAAAAAAAAAAAAAA") == "AAAAAAAAAAAAAAAAAAAAAA"


def test_configured_cluster_id_is_adopted_and_checked():
    objs = objects("prod", "kafka.clusterId=MkU3OEVBNTcwNTJENDM2Qg")
    assert objs.get("Secret", f"{RELEASE}-kafka-kraft")["stringData"]["cluster-id"] == "MkU3OEVBNTcwNTJENDM2Qg"
    assert any("kafka.clusterId" in line for line in problems("prod", "kafka.clusterId=not-a-cluster-id"))


# --- Kubernetes shapes ---------------------------------------------------------------------


def test_headless_services(stack):
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        spec = objs.get("StatefulSet", sts)["spec"]
        service = objs.get("Service", spec["serviceName"])
        assert service["metadata"]["name"] == f"{sts}-headless"
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        assert service["spec"]["selector"] == spec["selector"]["matchLabels"]


def test_client_service_pdbs_and_spreading_select_only_their_role(stack):
    objs = objects(stack, "kafka.ui.enabled=true")
    pods = {owner["metadata"]["name"]: template["metadata"]["labels"] for owner, template in objs.pod_templates()}
    client = objs.get("Service", BROKERS)
    assert client["spec"]["ports"] == [{"name": "broker", "port": 9092, "targetPort": "broker", "protocol": "TCP"}]
    selectors = {"client": (client["spec"]["selector"], BROKERS)}
    for sts in kafka_statefulsets(stack):
        spec = objs.get("StatefulSet", sts)["spec"]
        term = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        selectors[f"{sts} anti-affinity"] = (term["labelSelector"]["matchLabels"], sts)
        selectors[f"{sts} headless"] = (objs.get("Service", f"{sts}-headless")["spec"]["selector"], sts)
        pdb = objs.find("PodDisruptionBudget", f"{sts}-pdb")
        if pdb:
            selectors[f"{sts} pdb"] = (pdb["spec"]["selector"]["matchLabels"], sts)
    for what, (selector, owner) in selectors.items():
        matched = {name for name, labels in pods.items() if matches(selector, labels)}
        assert matched == {owner}, f"{what} selects {matched}"
    assert f"{RELEASE}-kafka-ui" in pods and f"{RELEASE}-kafka-exporter" in pods


def test_statefulset_shape(stack):
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        spec = objs.get("StatefulSet", sts)["spec"]
        pod = spec["template"]["spec"]
        assert spec["podManagementPolicy"] == "Parallel"
        assert spec["minReadySeconds"] >= 30
        assert pod["enableServiceLinks"] is False
        assert pod["terminationGracePeriodSeconds"] >= 120
        assert re.fullmatch(r"[0-9a-f]{64}", spec["template"]["metadata"]["annotations"]["ai-infra-matrix/config-checksum"])
        assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
        assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"


def test_config_change_rolls_the_pods():
    before, after = objects("prod"), objects("prod", "kafka.config.logRetentionHours=72")
    for sts in (CONTROLLERS, BROKERS):
        key = "ai-infra-matrix/config-checksum"
        assert (
            before.get("StatefulSet", sts)["spec"]["template"]["metadata"]["annotations"][key]
            != after.get("StatefulSet", sts)["spec"]["template"]["metadata"]["annotations"][key]
        )


def test_data_lives_on_the_volume_at_the_image_volume(stack):
    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        spec = objs.get("StatefulSet", sts)["spec"]
        mounts = {m["name"]: m["mountPath"] for m in kafka_container(objs, sts)["volumeMounts"]}
        assert mounts["data"] == "/var/lib/kafka/data"
        log_dirs = properties(objs, sts)["log.dirs"]
        assert log_dirs.startswith("/var/lib/kafka/data/") and log_dirs != "/var/lib/kafka/data"
        assert not log_dirs.startswith("/tmp")
        claims = spec["volumeClaimTemplates"]
        assert [claim["metadata"]["name"] for claim in claims] == ["data"]


def test_immutable_statefulset_fields_stay_put_across_configurations():
    base = objects("prod")
    for overrides in (["kafka.replicaCount=5"], ["kafka.config.logRetentionHours=24"], ["kafka.ui.enabled=false"]):
        other = objects("prod", *overrides)
        for sts in (CONTROLLERS, BROKERS):
            for field in ("serviceName", "selector", "volumeClaimTemplates"):
                assert base.get("StatefulSet", sts)["spec"][field] == other.get("StatefulSet", sts)["spec"][field], (
                    overrides,
                    sts,
                    field,
                )


@pytest.mark.parametrize(("controllers", "allowed"), [(3, 1), (5, 2)])
def test_controller_pdb_keeps_a_majority(controllers, allowed):
    objs = objects("prod", f"kafka.controller.replicaCount={controllers}")
    assert objs.get("PodDisruptionBudget", f"{CONTROLLERS}-pdb")["spec"]["maxUnavailable"] == allowed


def test_broker_pdb_stays_within_min_isr():
    objs = objects("prod")
    props = properties(objs, BROKERS)
    headroom = int(props["default.replication.factor"]) - int(props["min.insync.replicas"])
    pdb = objs.get("PodDisruptionBudget", f"{BROKERS}-pdb")["spec"]
    assert "minAvailable" not in pdb
    assert 1 <= pdb["maxUnavailable"] <= headroom


def test_no_pdb_for_one_replica():
    assert objects("dev").find("PodDisruptionBudget", f"{BROKERS}-pdb") is None
    objs = objects("prod", "kafka.controller.replicaCount=1", "kafka.controller.allowQuorumChange=true", "profile=dev",
                   "kafka.replicaCount=3", "kafka.config.defaultReplicationFactor=3", "kafka.config.minInsyncReplicas=2",
                   "kafka.controller.dedicated=true")  # fmt: skip
    assert objs.find("PodDisruptionBudget", f"{CONTROLLERS}-pdb") is None
    assert objs.find("PodDisruptionBudget", f"{BROKERS}-pdb") is not None


def test_heap_is_at_most_three_quarters_of_the_memory_limit(stack):
    from settings.base import parse_quantity

    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        container = kafka_container(objs, sts)
        heap = _group(r"-Xmx(\d+)m", env(container)["KAFKA_SERVER_HEAP_OPTS"])
        assert "KAFKA_HEAP_OPTS" not in env(container), "would size every CLI tool run in the pod too"
        assert int(heap) * 2**20 <= 0.75 * float(parse_quantity(container["resources"]["limits"]["memory"]))


def test_the_memory_request_holds_the_heap_and_the_jvms_own_memory(stack):
    """G1 comes to touch the whole heap (-Xms = -Xmx): a request below the heap plus the JVM's
    own memory is a pod that uses more than it asked for (measured: brokers at 1.6 GiB with
    1 GiB requested)."""
    from components.kafka_topology import JVM_NON_HEAP_MIB
    from settings.base import parse_quantity

    objs = objects(stack)
    for sts in kafka_statefulsets(stack):
        container = kafka_container(objs, sts)
        heap = int(_group(r"-Xmx(\d+)m", env(container)["KAFKA_SERVER_HEAP_OPTS"]))
        assert parse_quantity(container["resources"]["requests"]["memory"]) >= (heap + JVM_NON_HEAP_MIB) * 2**20, sts


def test_restricted_pod_security(stack):
    for owner, template in objects(stack, "kafka.ui.enabled=true").pod_templates():
        if "kafka" not in owner["metadata"]["name"]:
            continue
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True


# --- UI, exporter, wiring --------------------------------------------------------------------


def test_ui_is_read_only_behind_a_login():
    objs = objects("prod")
    deployment = objs.get("Deployment", f"{RELEASE}-kafka-ui")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    variables = env(container)
    assert container["image"].startswith("ghcr.io/kafbat/kafka-ui:v")
    assert variables["AUTH_TYPE"] == "LOGIN_FORM"
    assert variables["DYNAMIC_CONFIG_ENABLED"] == "false"
    assert variables["KAFKA_CLUSTERS_0_READONLY"] == "true"
    assert variables["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == f"{BROKERS}.ai-infra-prod.svc.cluster.local:9092"
    assert variables["SPRING_SECURITY_USER_PASSWORD"] == {"secretKeyRef": {"name": f"{RELEASE}-kafka-ui-auth", "key": "password"}}
    assert variables["SPRING_SECURITY_USER_NAME"]["secretKeyRef"]["name"] == f"{RELEASE}-kafka-ui-auth"
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/actuator/health"
    assert objs.get("Service", f"{RELEASE}-kafka-ui")["spec"]["ports"][0]["port"] == 8080
    assert objects("dev").find("Deployment", f"{RELEASE}-kafka-ui") is None


def test_exporter_on_9308(stack):
    objs = objects(stack)
    service = objs.get("Service", f"{RELEASE}-kafka-exporter")
    assert service["spec"]["ports"][0]["port"] == 9308
    container = objs.get("Deployment", f"{RELEASE}-kafka-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert f"--kafka.server={BROKERS}.{service['metadata']['namespace']}.svc.cluster.local:9092" in container["args"]


def test_backend_gets_bootstrap_servers_and_stack_outputs(stack):
    rendered = render_stack(stack)
    namespace = "ai-infra-prod" if stack == "prod" else "ai-infra"
    bootstrap = f"{BROKERS}.{namespace}.svc.cluster.local:9092"
    backend = Objects(rendered.objects).get("Deployment", f"{RELEASE}-backend")
    assert env(backend["spec"]["template"]["spec"]["containers"][0])["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    assert rendered.outputs["kafkaBootstrapServers"] == bootstrap
    expected_ui = f"http://{RELEASE}-kafka-ui.{namespace}.svc.cluster.local:8080" if stack == "prod" else ""
    assert rendered.outputs["kafkaUiUrl"] == expected_ui


def test_kafka_disabled_registers_nothing():
    rendered = render_stack("dev", "kafka.enabled=false")
    assert not [obj for obj in rendered.objects if "kafka" in obj["metadata"]["name"]]
    assert rendered.outputs["kafkaBootstrapServers"] == ""


# --- the quorum lock ---------------------------------------------------------------------------


def _quorum_locks(monkeypatch, stack: str, *overrides: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    original = kafka_kraft.random.RandomId

    def spy(name, *args, **kwargs):
        if name.startswith("kafka.controller+clusterDomain-change-refused"):
            seen.append({"keepers": kwargs["keepers"], "protect": kwargs["opts"].protect})
        return original(name, *args, **kwargs)

    monkeypatch.setattr(kafka_kraft.random, "RandomId", spy)
    render_tool.render(stack, overrides)
    return seen


def test_quorum_lock_changes_with_the_controllers_only(monkeypatch):
    base = _quorum_locks(monkeypatch, "prod")
    assert base and base[0]["protect"] is True
    assert _quorum_locks(monkeypatch, "prod", "kafka.replicaCount=5")[0]["keepers"] == base[0]["keepers"]
    changed = _quorum_locks(monkeypatch, "prod", "kafka.controller.replicaCount=5", "kafka.controller.allowQuorumChange=true")
    assert changed[0]["keepers"] != base[0]["keepers"]
    assert changed[0]["protect"] is False
    assert _quorum_locks(monkeypatch, "dev")[0]["protect"] is False


# --- settings rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [
        ("dev", ["kafka.config.defaultReplicationFactor=2"], "kafka.config.defaultReplicationFactor"),
        ("dev", ["kafka.config.minInsyncReplicas=2"], "kafka.config.minInsyncReplicas"),
        ("prod", ["kafka.config.minInsyncReplicas=3"], "kafka.config.minInsyncReplicas"),
        ("dev", ["kafka.config.offsetsTopicReplicationFactor=3"], "kafka.config.offsetsTopicReplicationFactor"),
        (
            "dev",
            ["kafka.config.transactionStateLogReplicationFactor=3"],
            "kafka.config.transactionStateLogReplicationFactor",
        ),
        ("prod", ["kafka.config.transactionStateLogMinIsr=4"], "kafka.config.transactionStateLogMinIsr"),
        ("prod", ["kafka.controller.replicaCount=4"], "kafka.controller.replicaCount"),
        ("prod", ["kafka.controller.replicaCount=2"], "kafka.controller.replicaCount"),
        ("prod", ["kafka.controller.replicaCount=1"], "kafka.controller.replicaCount"),
        ("prod", ["kafka.controller.dedicated=false"], "kafka.controller.replicaCount"),
        ("dev", ["kafka.replicaCount=3"], "kafka.replicaCount"),
        ("dev", ["kafka.replicaCount=3", "kafka.controller.dedicated=true"], "kafka.config.minInsyncReplicas"),
        ("prod", ["kafka.config.defaultReplicationFactor=2", "kafka.config.minInsyncReplicas=1"],
         "kafka.config.defaultReplicationFactor"),
        ("prod", ["kafka.config.minInsyncReplicas=1"], "kafka.config.minInsyncReplicas"),
        ("prod", ["kafka.config.uncleanLeaderElectionEnable=true"], "kafka.config.uncleanLeaderElectionEnable"),
        ("prod", ["kafka.config.offsetsTopicReplicationFactor=1"], "kafka.config.offsetsTopicReplicationFactor"),
        ("prod", ["kafka.persistence.enabled=false"], "kafka.persistence.enabled"),
        ("prod", ["kafka.image.tag=latest"], "kafka.image.tag"),
        ("prod", ["kafka.config.brokerHeartbeatIntervalMs=5000"], "kafka.config.brokerHeartbeatIntervalMs"),
    ],
)  # fmt: skip
def test_bad_kafka_config_is_refused_naming_the_key(stack, overrides, key):
    lines = problems(stack, *overrides)
    assert any(line.startswith(f"ai-infra-matrix:{key}:") for line in lines), lines


def test_good_configs_pass():
    render_tool.render("prod", ["kafka.replicaCount=5"])
    render_tool.render("prod", ["kafka.controller.replicaCount=5"])
    render_tool.render("dev", ["kafka.config.uncleanLeaderElectionEnable=true"])
    render_tool.render("dev", ["kafka.controller.dedicated=true", "kafka.replicaCount=3", "kafka.controller.replicaCount=1",
                               "kafka.config.defaultReplicationFactor=3", "kafka.config.minInsyncReplicas=2"])  # fmt: skip


def _group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s match in ``text``; fails the test when there is none."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found"
    return match.group(1)
