"""Dynamic volumes, Pod Security admission, and images pulled only from the in-cluster registry."""

from __future__ import annotations

import time

from tests.cluster.conftest import TOOLBOX, toolbox_pod
from tests.kube import Cluster, pod_exec, pod_ready
from tools.cluster import layout


def _claim_pod(name: str) -> dict:
    pod = toolbox_pod(name, command="sleep 3600")
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    return pod


def test_pvc_binds_dynamically_and_data_survives_a_new_pod(cluster: Cluster, namespace: str) -> None:
    classes = cluster.get("storageclass")["items"]
    default = [
        c for c in classes if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert [c["metadata"]["name"] for c in default] == ["standard"]
    assert default[0]["allowVolumeExpansion"] is False, "local-path cannot resize; the class must say so"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.apply(namespace, claim, _claim_pod("writer"))
    cluster.wait("writer Ready with its volume", lambda: pod_ready(cluster, namespace, "writer"), timeout=180)
    assert cluster.get("-n", namespace, "pvc", "data")["status"]["phase"] == "Bound"
    code, out = pod_exec(cluster, namespace, "writer", "echo kept-across-pods > /data/proof && sync")
    assert code == 0, out
    cluster.kubectl("-n", namespace, "delete", "pod", "writer", "--wait=true", timeout=120)
    cluster.apply(namespace, _claim_pod("reader"))
    cluster.wait("reader Ready on the same volume", lambda: pod_ready(cluster, namespace, "reader"), timeout=180)
    code, out = pod_exec(cluster, namespace, "reader", "cat /data/proof")
    assert code == 0 and "kept-across-pods" in out, out


def test_restricted_namespace_rejects_a_privileged_pod(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    privileged = toolbox_pod("privileged", command="sleep 3600")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    out = cluster.kubectl("-n", namespace, "apply", "-f", "-", input_text=__import__("json").dumps(privileged), check=False)
    assert "violates PodSecurity" in out and "restricted" in out, out
    assert not cluster.get("-n", namespace, "pods")["items"]


def test_a_pod_runs_an_image_pulled_by_reference_from_the_registry(cluster: Cluster, namespace: str) -> None:
    assert TOOLBOX.startswith(layout.REGISTRY_HOST + "/")
    cluster.apply(namespace, toolbox_pod("pulled", command="sleep 3600") | {})
    cluster.wait("pulled Ready", lambda: pod_ready(cluster, namespace, "pulled"))
    status = cluster.get("-n", namespace, "pod", "pulled")["status"]["containerStatuses"][0]
    assert status["image"] == TOOLBOX
    assert "@sha256:" in status["imageID"]


def test_an_image_missing_from_the_registry_fails_at_once_with_a_local_error(cluster: Cluster, namespace: str) -> None:
    pod = toolbox_pod("missing", command="true")
    pod["spec"]["containers"][0]["image"] = "docker.io/library/no-such-image:1"
    start = time.monotonic()
    cluster.apply(namespace, pod)

    def failed() -> bool:
        events = cluster.kubectl("-n", namespace, "get", "events", "--field-selector=involvedObject.name=missing")
        return "Failed to pull image" in events or "ErrImagePull" in events

    cluster.wait("the pull of an image the registry lacks to fail", failed, timeout=60)
    took = time.monotonic() - start
    events = cluster.kubectl("-n", namespace, "get", "events", "--field-selector=involvedObject.name=missing", "-o", "wide")
    assert "code = NotFound" in events and "not found" in events, events
    assert took < 45, f"the pull failed only after {took:.0f} s"
    # the answer came from the in-cluster registry (hosts.toml mirrors docker.io to it), not from outside
    registry_log = cluster.kubectl("-n", "kube-system", "logs", "deployment/registry", "--since=5m")
    assert "/v2/library/no-such-image/manifests/1" in registry_log, registry_log[-2000:]
