"""AutoscaledApp (backend, frontend, nginx) as the program registers it under mocks."""

from __future__ import annotations

import pytest

from components.autoscaled_app import PATCH_FORCE
from settings import load_settings
from tests.conftest import Objects, objects, render_stack
from tools.render import evaluate

APPS = ("backend", "frontend", "nginx")


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("app", APPS)
def test_prod_hpa_is_named_as_in_the_guide_and_targets_its_deployment(app):
    prod = objects("prod")
    hpa = prod.get("HorizontalPodAutoscaler", f"ai-infra-{app}-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"ai-infra-{app}"}
    prod.get("Deployment", target["name"])
    metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert metrics == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }


def test_prod_hpa_ranges_and_behaviour_follow_the_guide():
    prod = objects("prod")
    ranges = {app: prod.get("HorizontalPodAutoscaler", f"ai-infra-{app}-hpa")["spec"] for app in APPS}
    assert {app: (spec["minReplicas"], spec["maxReplicas"]) for app, spec in ranges.items()} == {
        "backend": (2, 10),
        "frontend": (2, 5),
        "nginx": (2, 5),
    }
    behavior = ranges["backend"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 4, "periodSeconds": 60}]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]


@pytest.mark.parametrize("app", APPS)
def test_with_the_hpa_on_replicas_are_declared_for_a_create_and_kept_on_updates(app):
    """spec.replicas is never left out (server-side apply would reset a running
    Deployment to 1): it is minReplicas for a new Deployment, and ignore_changes makes
    every update keep the live count, the HPA's. No force: nothing to take back."""
    prod = render_stack("prod")
    deployment = Objects(prod.objects).get("Deployment", f"ai-infra-{app}")
    assert deployment["spec"]["replicas"] == prod.settings.apps[app].autoscaling.min_replicas == 2
    assert prod.ignore_changes[("Deployment", f"ai-infra-{app}")] == ("spec.replicas",)
    assert PATCH_FORCE not in deployment["metadata"].get("annotations", {})


@pytest.mark.parametrize("app", APPS)
def test_with_the_hpa_off_the_program_sets_replicas_and_takes_the_field_back(app):
    """Turning the HPA off sets replicaCount, forced: the HPA controller still owns
    spec.replicas from its last scale, and an unforced apply would fail on the conflict."""
    dev = render_stack("dev", f"{app}.replicaCount=3")
    deployment = Objects(dev.objects).get("Deployment", f"ai-infra-{app}")
    assert deployment["spec"]["replicas"] == 3
    assert ("Deployment", f"ai-infra-{app}") not in dev.ignore_changes
    assert deployment["metadata"]["annotations"][PATCH_FORCE] == "true"
    off = render_stack("prod", f"{app}.autoscaling.enabled=false", f"{app}.replicaCount=4")
    assert Objects(off.objects).get("Deployment", f"ai-infra-{app}")["spec"]["replicas"] == 4
    assert Objects(off.objects).find("HorizontalPodAutoscaler", f"ai-infra-{app}-hpa") is None
    assert ("Deployment", f"ai-infra-{app}") not in off.ignore_changes


def test_dev_has_no_hpa_and_no_pdb_for_single_replicas():
    dev = objects("dev")
    assert dev.of_kind("HorizontalPodAutoscaler") == []
    assert [name for name in dev.names("PodDisruptionBudget") if any(app in name for app in APPS)] == []


@pytest.mark.parametrize("app", APPS)
def test_prod_pdb_allows_one_pod_down_and_selects_the_apps_pods(app):
    prod = objects("prod")
    pdb = prod.get("PodDisruptionBudget", f"ai-infra-{app}-pdb")
    assert pdb["spec"]["maxUnavailable"] == 1
    labels = prod.get("Deployment", f"ai-infra-{app}")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_rollouts_never_drop_below_desired_capacity():
    for app in APPS:
        strategy = objects("prod").get("Deployment", f"ai-infra-{app}")["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")


def test_backend_probes_health_on_8082_as_in_the_guide():
    backend = container(objects("prod").get("Deployment", "ai-infra-backend"))
    ports = {port["name"]: port["containerPort"] for port in backend["ports"]}
    assert ports == {"http": 8082}
    assert backend["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert backend["readinessProbe"]["periodSeconds"] == 5
    # Liveness only connects (kube-score's container-probes identical): a backend too busy
    # to answer /health leaves the Service for 15 s, and is restarted only once its port
    # has been closed for a minute.
    assert backend["livenessProbe"]["tcpSocket"] == {"port": "http"} and "httpGet" not in backend["livenessProbe"]
    assert backend["livenessProbe"]["initialDelaySeconds"] == 30
    assert backend["livenessProbe"]["failureThreshold"] * backend["livenessProbe"]["periodSeconds"] == 60


def test_the_guides_http_liveness_probe_is_still_one_setting_away():
    backend = container(
        objects("prod", "backend.livenessProbe.type=httpGet", "backend.livenessProbe.path=/alive").get(
            "Deployment", "ai-infra-backend"
        )
    )
    assert backend["livenessProbe"]["httpGet"] == {"path": "/alive", "port": "http"}
    assert "tcpSocket" not in backend["livenessProbe"]


def test_restricted_security_context_everywhere():
    for app in APPS:
        deployment = objects("prod").get("Deployment", f"ai-infra-{app}")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container(deployment)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert pod["automountServiceAccountToken"] is False


def test_a_tier_runs_as_the_configured_user_and_root_only_below_restricted():
    pinned = objects("dev", "frontend.securityContext.runAsUser=1000", "frontend.securityContext.runAsGroup=3000")
    pod = pinned.get("Deployment", "ai-infra-frontend")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (1000, 3000)
    assert pod["securityContext"]["runAsNonRoot"] is True
    root = objects("dev", "backend.securityContext.runAsUser=0", "podSecurityLevel=baseline")
    namespace = root.of_kind("Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    deployment = root.get("Deployment", "ai-infra-backend")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is False
    assert container(deployment)["securityContext"]["runAsNonRoot"] is False
    assert container(deployment)["securityContext"]["capabilities"] == {"drop": ["ALL"]}  # root, but without capabilities
    other = root.get("Deployment", "ai-infra-frontend")["spec"]["template"]["spec"]
    assert other["securityContext"]["runAsNonRoot"] is True  # only the tier that asked runs as root


def test_low_ports_are_opened_by_the_sysctl_not_by_a_capability():
    """A capability added for a non-root user is not effective without file capabilities
    on the binary; the namespaced sysctl works and every capability stays dropped."""
    prod = objects("prod")
    nginx = prod.get("Deployment", "ai-infra-nginx")
    assert nginx["spec"]["template"]["spec"]["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}
    ]
    for app in APPS:
        deployment = prod.get("Deployment", f"ai-infra-{app}")
        assert "add" not in container(deployment)["securityContext"]["capabilities"], app
    backend = prod.get("Deployment", "ai-infra-backend")
    assert "sysctls" not in backend["spec"]["template"]["spec"]["securityContext"]


def test_nginx_is_the_load_balancer_in_prod_with_http_and_https():
    service = objects("prod").get("Service", "ai-infra-nginx")
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 80, "http"),
        ("https", 443, "https"),
    ]
    assert objects("dev").get("Service", "ai-infra-nginx")["spec"]["type"] == "ClusterIP"


def test_replicas_spread_over_nodes_and_zones():
    pod = objects("prod").get("Deployment", "ai-infra-backend")["spec"]["template"]["spec"]
    selector = {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "ai-infra"}
    preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"] == {
        "labelSelector": {"matchLabels": selector},
        "topologyKey": "kubernetes.io/hostname",
    }
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == selector


def test_env_from_config_and_from_secret_refs_never_as_literals():
    backend = container(
        objects(
            "dev",
            "backend.env.FEATURE_X=enabled",
            "backend.env.CACHE_TTL=300",
            "backend.secretEnv.OIDC_CLIENT_SECRET={secret: oidc, key: client-secret}",
        ).get("Deployment", "ai-infra-backend")
    )
    env = {item["name"]: item for item in backend["env"]}
    assert env["FEATURE_X"] == {"name": "FEATURE_X", "value": "enabled"}
    assert env["CACHE_TTL"] == {"name": "CACHE_TTL", "value": "300"}
    assert env["OIDC_CLIENT_SECRET"]["valueFrom"] == {"secretKeyRef": {"name": "oidc", "key": "client-secret"}}
    assert env["JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "ai-infra-app-secrets", "key": "jwt-secret"}
    assert "value" not in env["SESSION_SECRET"]


def test_disabling_a_tier_removes_all_its_objects():
    names = [obj["metadata"]["name"] for obj in objects("prod", "frontend.enabled=false").all]
    assert not [name for name in names if "frontend" in name]


def test_changing_max_replicas_changes_only_that_hpa():
    before = {(o["kind"], o["metadata"]["name"]): o for o in objects("prod").all}
    after = {(o["kind"], o["metadata"]["name"]): o for o in objects("prod", "backend.autoscaling.maxReplicas=12").all}
    assert before.keys() == after.keys()
    changed = [key for key in before if before[key] != after[key]]
    assert changed == [("HorizontalPodAutoscaler", "ai-infra-backend-hpa")]
    assert after[changed[0]]["spec"]["maxReplicas"] == 12


def test_image_pull_secrets_reach_every_app_pod():
    rendered = objects("dev", "imagePullSecrets=[regcred]")
    for app in APPS:
        pod = rendered.get("Deployment", f"ai-infra-{app}")["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_component_evaluates_for_a_custom_release_name():
    settings = load_settings({"releaseName": "edge"}, stack="dev")
    names = Objects(evaluate(settings, "dev").objects).names("Deployment")
    assert {"edge-backend", "edge-frontend", "edge-nginx"} <= set(names)
