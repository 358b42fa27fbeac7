"""Independent scan: kube-score (pinned v1.20.0, built by tools/ci/install-kube-score.sh)
over the rendered dev and prod manifests reports no warning and no critical finding, for
every check it runs by default. A check that does not apply to an object is ignored ON
that object (``kube-score/ignore``), written in code by ``components.k8s.scan_exceptions``
/ ``kube_score_ignores`` with the reason beside it; the checkov twins of a skip share its
reason. Among what it holds the render to: liveness and readiness probes that differ
(an overloaded pod leaves rotation instead of being restarted) and an ephemeral-storage
request and limit on every container (a full log or scratch volume evicts only its pod).

Skipped, naming the build command, when the binary is not there.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.k8s import kube_score_ignores
from tests.conftest import render_stack
from tools import render as render_tool

KUBE_SCORE_VERSION = "v1.20.0"  # tools/ci/install-kube-score.sh
INSTALL = "bash tools/ci/install-kube-score.sh"
# The Kubernetes the project is tested on (tools/cluster); kube-score's default is v1.18.
KUBERNETES_VERSION = "v1.33"
GRADES = {1: "CRITICAL", 5: "WARNING", 7: "ALMOST_OK", 10: "OK"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob"}


def kube_score_binary() -> Path:
    override = os.environ.get("KUBE_SCORE")
    if override:
        return Path(override)
    tools = Path(os.environ.get("AI_INFRA_TOOLS_DIR") or Path.home() / ".cache/ai-infra-matrix/tools")
    return tools / f"kube-score-{KUBE_SCORE_VERSION}" / "kube-score"


def run_kube_score(manifests: Path) -> list[dict[str, Any]]:
    """kube-score's JSON report (one entry per object) of ``manifests``."""
    binary = kube_score_binary()
    if not binary.is_file():
        pytest.skip(f"kube-score {KUBE_SCORE_VERSION} is not built at {binary}; run `{INSTALL}` (or `make deps`)")
    command = [str(binary), "score", "--output-format", "json", "--kubernetes-version", KUBERNETES_VERSION, str(manifests)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    # Exit 1 means "critical findings": the report says which. Anything else is a broken run.
    assert done.returncode in (0, 1), f"kube-score exited {done.returncode}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


def scan(objects: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    directory.mkdir(parents=True, exist_ok=True)
    manifests = directory / "manifests.yaml"
    manifests.write_text(render_tool.manifests_yaml(objects))
    return run_kube_score(manifests)


def findings(report: list[dict[str, Any]]) -> list[str]:
    """Every check below OK that is not ignored, with kube-score's own comments."""
    found = []
    for entry in report:
        ref = f"{entry['type_meta']['kind']}/{entry['object_meta']['name']}"
        for check in entry["checks"]:
            if check["skipped"] or check["grade"] >= 10:
                continue
            grade = GRADES.get(check["grade"], str(check["grade"]))
            comments = "; ".join(f"({c.get('path') or '-'}) {c.get('summary')}" for c in check.get("comments") or [])
            found.append(f"{grade} {check['check']['id']} {ref}: {comments}")
    return sorted(found)


def counts(report: list[dict[str, Any]]) -> dict[str, int]:
    result = {"objects": len(report), "ok": 0, "ignored": 0, "findings": 0}
    for entry in report:
        for check in entry["checks"]:
            # Optional checks (off by default) are reported as ignored too; count ours only.
            ignored = (
                check["skipped"]
                and not check["check"]["optional"]
                and any("is ignored" in (c.get("summary") or "") for c in check.get("comments") or [])
            )
            key = "ignored" if ignored else "ok" if check["skipped"] or check["grade"] >= 10 else "findings"
            result[key] += 1
    return result


def record(stack: str, report: list[dict[str, Any]]) -> None:
    summary = counts(report)
    print(f"\nkube-score {KUBE_SCORE_VERSION}, {stack}: {summary}")
    target = os.environ.get("AI_INFRA_MEASUREMENTS")
    if target:
        with Path(target).open("a") as handle:
            row = {"system": "kube-score", "measurement": "scan", "stack": stack, "kube-score": KUBE_SCORE_VERSION, **summary}
            handle.write(json.dumps(row, sort_keys=True) + "\n")


# As test_checkov.py: the stacks as shipped, and prod with the optional objects on.
SCANS = {
    "dev": ("dev", ()),
    "prod": ("prod", ()),
    "prod-options": (
        "prod",
        (
            "monitoring.enabled=true",
            "backup.destination=s3",
            "backup.s3.bucket=backups",
            "backup.s3.credentialsSecret=backup-s3",
        ),
    ),
}


@pytest.mark.parametrize("scan_name", list(SCANS))
def test_kube_score_finds_nothing(scan_name, tmp_path):
    stack, overrides = SCANS[scan_name]
    objects = render_stack(stack, *overrides).objects
    report = scan(objects, tmp_path / scan_name)
    record(scan_name, report)
    assert not findings(report), "kube-score findings:\n" + "\n".join(findings(report))
    # Every workload was scored, with the two checks of issue 12 among its checks.
    scored = {
        f"{entry['type_meta']['kind']}/{entry['object_meta']['name']}": {check["check"]["id"] for check in entry["checks"]}
        for entry in report
    }
    workloads = [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects if obj["kind"] in WORKLOAD_KINDS]
    assert workloads and set(workloads) <= set(scored), sorted(set(workloads) - set(scored))
    for workload in workloads:
        assert "container-ephemeral-storage-request-and-limit" in scored[workload], workload
        if not workload.startswith(("Job/", "CronJob/")):
            assert "pod-probes-identical" in scored[workload], workload


def test_every_ignore_sits_on_the_object_it_excuses(stack):
    """kube-score/ignore goes on the object's own metadata, never on a pod template,
    where it would hide in every pod."""
    for obj in render_stack(stack).objects:
        spec = obj.get("spec", {})
        for template in (spec.get("template", {}), spec.get("jobTemplate", {})):
            assert "kube-score/ignore" not in ((template.get("metadata") or {}).get("annotations") or {}), obj["metadata"]["name"]


def test_the_scan_catches_identical_probes_and_unbounded_scratch(tmp_path):
    """The scan above can fail: the two findings of issue 12 on a Deployment built the
    way the render used to build its pods."""
    probe = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10}
    labels = {"app": "bad"}
    bad: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bad", "namespace": "ai-infra"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "example:1.0",
                                "livenessProbe": probe,
                                "readinessProbe": probe,
                                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "bad", "namespace": "ai-infra"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]
    found = "\n".join(findings(scan(bad, tmp_path / "bad")))
    assert "CRITICAL pod-probes-identical Deployment/bad" in found, found
    assert "CRITICAL container-ephemeral-storage-request-and-limit Deployment/bad" in found, found
    # An ignore on the object silences exactly the checks it names.
    bad[0]["metadata"]["annotations"] = kube_score_ignores({"pod-probes-identical": "for the test"})
    found = "\n".join(findings(scan(bad, tmp_path / "ignored")))
    assert "pod-probes-identical" not in found and "container-ephemeral-storage-request-and-limit" in found, found


def test_ignore_helper_refuses_a_check_without_a_reason():
    assert kube_score_ignores({"b-check": "why", "a-check": "why"}) == {"kube-score/ignore": "a-check,b-check"}
    assert kube_score_ignores({}) == {}
    for bad in ({"a-check": " "}, {"a,b": "why"}, {"": "why"}):
        with pytest.raises(ValueError):
            kube_score_ignores(bad)
