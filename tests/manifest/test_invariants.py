"""Project invariants over every rendered object of dev and prod: selectors find their
pods, HPAs find their workloads, references resolve, and every container is sized,
probed and meets the Pod Security Standards' restricted profile."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from components.postgres_ha import ROLE_LABEL
from tests.conftest import Objects, render_stack

# Labels the running systems put on their pods (Patroni marks the leader and replicas):
# a Service may select on them although no pod template carries them.
RUNTIME_LABELS = {ROLE_LABEL}

RESTRICTED_ADDABLE_CAPABILITIES = {"NET_BIND_SERVICE"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.fixture(params=["dev", "prod"])
def rendered(request: pytest.FixtureRequest) -> Objects:
    return Objects(render_stack(request.param).objects)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def _templates(rendered: Objects) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return list(rendered.pod_templates())


def _containers(pod_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("init", c) for c in pod_spec.get("initContainers", [])] + [("main", c) for c in pod_spec["containers"]]


def test_workload_selectors_match_their_own_template(rendered):
    for obj in rendered.all:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            selector = obj["spec"]["selector"]["matchLabels"]
            assert _matches(selector, obj["spec"]["template"]["metadata"]["labels"]), obj["metadata"]["name"]


def test_every_service_selector_finds_pods(rendered):
    templates = _templates(rendered)
    for service in rendered.of_kind("Service"):
        selector = {key: value for key, value in service["spec"].get("selector", {}).items() if key not in RUNTIME_LABELS}
        if not selector:
            continue
        owners = [
            owner["metadata"]["name"] for owner, template in templates if _matches(selector, template["metadata"]["labels"])
        ]
        assert owners, f"Service {service['metadata']['name']} selects no pods"


def test_every_service_target_port_exists_on_the_selected_pods(rendered):
    templates = _templates(rendered)
    for service in rendered.of_kind("Service"):
        selector = {key: value for key, value in service["spec"].get("selector", {}).items() if key not in RUNTIME_LABELS}
        if not selector:
            continue
        for owner, template in templates:
            if not _matches(selector, template["metadata"]["labels"]) or owner["kind"] == "Job":
                continue
            ports = {
                key
                for container in template["spec"]["containers"]
                for port in container.get("ports", [])
                for key in (port.get("name"), port["containerPort"])
            }
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert target in ports, f"Service {service['metadata']['name']} port {target} not on {owner['metadata']['name']}"


def test_every_pdb_selects_exactly_one_workload(rendered):
    templates = _templates(rendered)
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        owners = [
            o["metadata"]["name"] for o, t in templates if o["kind"] != "Job" and _matches(selector, t["metadata"]["labels"])
        ]
        assert len(owners) == 1, f"PDB {pdb['metadata']['name']} selects {owners}"
        owner = rendered.get(next(o["kind"] for o, _ in templates if o["metadata"]["name"] == owners[0]), owners[0])
        floor = owner["spec"].get("replicas")
        if floor is None:  # replicas belong to an HPA: its floor is what a PDB may take from
            floor = next(
                h["spec"]["minReplicas"]
                for h in rendered.of_kind("HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == owners[0]
            )
        assert "maxUnavailable" in pdb["spec"], "PDBs use maxUnavailable so they never block every drain"
        assert pdb["spec"]["maxUnavailable"] < floor, f"PDB {pdb['metadata']['name']} would allow every pod down"


def test_no_job_pod_is_taken_for_a_servers_pod(rendered):
    """Job and CronJob pods match no Service, PDB, workload selector or anti-affinity term:
    else a finished Job pod blocks every eviction (it has no scale, so the disruption
    controller allows none), takes a Service endpoint, or keeps a server off a node."""
    selectors: list[tuple[str, dict[str, str]]] = []
    for obj in rendered.all:
        spec, name = obj.get("spec", {}), f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] == "Service" and spec.get("selector"):
            selectors.append((name, spec["selector"]))
        elif obj["kind"] in ("PodDisruptionBudget", "Deployment", "StatefulSet"):
            selectors.append((name, spec["selector"]["matchLabels"]))
        if obj["kind"] in ("Deployment", "StatefulSet"):
            affinity = spec["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
            for term in affinity.get("requiredDuringSchedulingIgnoredDuringExecution", []):
                selectors.append((f"{name} anti-affinity", term["labelSelector"]["matchLabels"]))
    jobs = [(o, t) for o, t in _templates(rendered) if o["kind"] in ("Job", "CronJob")]
    assert jobs, "the stack renders no Job to check"
    for owner, template in jobs:
        labels = template["metadata"]["labels"]
        taken = [name for name, selector in selectors if _matches(selector, labels)]
        assert not taken, f"{owner['kind']} {owner['metadata']['name']}'s pods are selected by {taken}"


def test_every_hpa_targets_an_existing_workload_whose_replica_count_updates_keep(stack):
    """An HPA's target declares replicas (a new Deployment starts at minReplicas; a field
    left out would be reset to 1 by server-side apply) and ignores its changes, so no
    update moves the count the HPA chose. Without an HPA the count is the program's."""
    result = render_stack(stack)
    rendered = Objects(result.objects)
    targets = set()
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment", "only stateless Deployments autoscale"
        workload = rendered.get(target["kind"], target["name"])
        assert workload["spec"]["replicas"] == hpa["spec"]["minReplicas"]
        assert result.ignore_changes.get(("Deployment", target["name"])) == ("spec.replicas",)
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        targets.add(target["name"])
    for key in result.ignore_changes:
        assert key[0] == "Deployment" and key[1] in targets, f"{key} ignores changes without an HPA"


@pytest.mark.parametrize(
    ("stack", "overrides", "expected"),
    [
        ("dev", (), 1),
        ("prod", (), 6),
        ("prod", ("redisCluster.masterCount=6",), 12),
        ("prod", ("redisCluster.requireSeparateNodes=false",), 3),
        ("prod", ("redisCluster.requireSeparateNodes=false", "patroni.replicaCount=5"), 5),
    ],
)
def test_minimum_nodes_is_what_the_rendered_anti_affinity_requires(stack, overrides, expected):
    """settings.minimum_nodes (the minimumNodes output, the README's numbers) against the
    rendered objects: every pod template with a required hostname anti-affinity term,
    with the pods that term selects, over every workload of the render."""
    result = render_stack(stack, *overrides)
    rendered = Objects(result.objects)
    pods = [(owner, template, _pod_count(owner)) for owner, template in rendered.pod_templates()]
    required: dict[str, int] = {}
    for owner, template, _ in pods:
        affinity = template["spec"].get("affinity", {}).get("podAntiAffinity", {})
        for term in affinity.get("requiredDuringSchedulingIgnoredDuringExecution", []):
            assert term["topologyKey"] == "kubernetes.io/hostname"
            selector = term["labelSelector"]["matchLabels"]
            selected = [
                (other, count)
                for other, other_template, count in pods
                if _matches(selector, other_template["metadata"]["labels"])
            ]
            # A term against its own workload only: then workloads never exclude each other.
            assert [other["metadata"]["name"] for other, _ in selected] == [owner["metadata"]["name"]], selected
            required[selector["app.kubernetes.io/name"]] = sum(count for _, count in selected)
    assert required == result.settings.separate_node_pods
    assert result.settings.minimum_nodes == max(required.values(), default=1) == expected
    assert result.outputs["minimumNodes"] == expected


def _pod_count(owner: dict[str, Any]) -> int:
    """Pods a workload runs at once (Jobs: one; their pods carry no required term)."""
    return int(owner["spec"].get("replicas", 1)) if owner["kind"] in ("Deployment", "StatefulSet") else 1


def test_statefulsets_have_their_headless_service(rendered):
    for sts in rendered.of_kind("StatefulSet"):
        service = rendered.get("Service", sts["spec"]["serviceName"])
        assert service["spec"].get("clusterIP") == "None"
        assert _matches(service["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"])


def test_referenced_secrets_and_configmaps_exist(rendered):
    for owner, template in _templates(rendered):
        pod = template["spec"]
        wanted: set[tuple[str, str]] = set()
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                wanted.add(("Secret", volume["secret"]["secretName"]))
            if "configMap" in volume:
                wanted.add(("ConfigMap", volume["configMap"]["name"]))
        for _, container in _containers(pod):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    wanted.add(("Secret", ref["secretKeyRef"]["name"]))
                if "configMapKeyRef" in ref:
                    wanted.add(("ConfigMap", ref["configMapKeyRef"]["name"]))
        for kind, name in wanted:
            assert rendered.find(kind, name) is not None, f"{owner['metadata']['name']} refers to missing {kind} {name}"


def test_every_container_has_requests_limits_and_probes(rendered):
    for owner, template in _templates(rendered):
        for role, container in _containers(template["spec"]):
            where = f"{owner['kind']} {owner['metadata']['name']} container {container['name']}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{where}: requests"
            assert "memory" in resources.get("limits", {}), f"{where}: memory limit"
            if role == "main" and owner["kind"] in ("Deployment", "StatefulSet"):
                assert "livenessProbe" in container, f"{where}: liveness probe"
                assert "readinessProbe" in container, f"{where}: readiness probe"


def test_every_pod_meets_the_restricted_pod_security_standard(rendered):
    for owner, template in _templates(rendered):
        pod = template["spec"]
        where = f"{owner['kind']} {owner['metadata']['name']}"
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(flag), f"{where}: {flag}"
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, f"{where}: volume type {kinds}"
        pod_context = pod.get("securityContext", {})
        assert pod_context.get("runAsUser") != 0, f"{where}: runs as root"
        for _, container in _containers(pod):
            context = container.get("securityContext", {})
            name = f"{where} container {container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation"
            assert not context.get("privileged"), f"{name}: privileged"
            assert "ALL" in context.get("capabilities", {}).get("drop", []), f"{name}: drop ALL"
            assert set(context.get("capabilities", {}).get("add", [])) <= RESTRICTED_ADDABLE_CAPABILITIES, f"{name}: capabilities"
            assert (context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))) is True, f"{name}: runAsNonRoot"
            assert context.get("runAsUser", pod_context.get("runAsUser")) != 0, f"{name}: runAsUser 0"
            seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), f"{name}: seccomp"
            assert not container.get("ports") or all("hostPort" not in p for p in container["ports"]), f"{name}: hostPort"


def test_prod_images_are_pinned():
    prod = Objects(render_stack("prod").objects)
    for owner, template in _templates(prod):
        for _, container in _containers(template["spec"]):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2] or ("digest" if "@sha256:" in image else "")
            assert tag and tag != "latest", f"{owner['metadata']['name']}: image {image} is not pinned"


def test_no_password_is_passed_on_a_command_line(rendered):
    for owner, template in _templates(rendered):
        for _, container in _containers(template["spec"]):
            words = [*container.get("command", []), *container.get("args", [])]
            for before, after in itertools.pairwise(words):
                assert before not in ("-a", "--pass", "--password"), (
                    f"{owner['metadata']['name']}: password flag {before} {after}"
                )
