"""Independent scan: checkov (framework kubernetes, pinned 3.3.30) over the rendered dev
and prod manifests finds nothing. A check that does not apply to an object is skipped ON
that object, with a reason (``checkov.io/skipN: CKV_K8S_xx=reason``, written in code by
``components.k8s.checkov_skips``); a skip without a reason fails here too.

checkov lives in its own virtualenv outside the repo (tools/ci/install-checkov.sh) and
runs offline: no update check, no platform download. Counts per stack are printed and
appended to $AI_INFRA_MEASUREMENTS when set.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import render_stack
from tools import render as render_tool

CHECKOV_VERSION = "3.3.30"
INSTALL = "bash tools/ci/install-checkov.sh"
# checkov writes this when an annotation names a check without "=reason".
NO_REASON = "No comment provided"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def checkov_binary() -> Path:
    override = os.environ.get("CHECKOV")
    if override:
        return Path(override)
    tools = Path(os.environ.get("AI_INFRA_TOOLS_DIR") or Path.home() / ".cache/ai-infra-matrix/tools")
    return tools / f"checkov-{CHECKOV_VERSION}" / "venv" / "bin" / "checkov"


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's JSON report of the kubernetes framework over ``directory``."""
    binary = checkov_binary()
    if not binary.is_file():
        pytest.fail(f"checkov {CHECKOV_VERSION} is not installed at {binary}; run `{INSTALL}`")
    env = {
        **os.environ,
        # Offline and deterministic: no PyPI update check, no policy/mapping download.
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "BC_SKIP_MAPPING": "TRUE",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("BC_API_KEY", None)
    command = [
        str(binary),
        "--directory",
        str(directory),
        "--framework",
        "kubernetes",
        "--output",
        "json",
        "--compact",
        "--skip-download",
    ]
    # cwd: the scan directory, so no .checkov.yaml of the caller's is picked up.
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=600, check=False)
    # Exit 1 means "failed checks": the report says which. Anything else is a broken run.
    assert done.returncode in (0, 1), f"checkov exited {done.returncode}:\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout)
    if isinstance(report, list):  # one entry per framework; we ask for one
        (report,) = [entry for entry in report if entry.get("check_type") == "kubernetes"]
    assert report["check_type"] == "kubernetes"
    assert report["summary"]["checkov_version"] == CHECKOV_VERSION
    return report


def scan(objects: list[dict[str, Any]], directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifests.yaml").write_text(render_tool.manifests_yaml(objects))
    return run_checkov(directory)


def reasonless_skips(report: dict[str, Any]) -> list[str]:
    return [
        f"{entry['check_id']} on {entry['resource']}"
        for entry in report["results"].get("skipped_checks", [])
        if not (entry.get("check_result", {}).get("suppress_comment") or "").strip()
        or entry["check_result"]["suppress_comment"].strip() == NO_REASON
    ]


def failures(report: dict[str, Any]) -> list[str]:
    return sorted(
        f"{entry['check_id']} {entry['check_name']}: {entry['resource']}" for entry in report["results"].get("failed_checks", [])
    )


def record(stack: str, summary: dict[str, Any]) -> None:
    counts = {key: summary[key] for key in ("passed", "failed", "skipped", "resource_count")}
    print(f"\ncheckov {CHECKOV_VERSION} --framework kubernetes, {stack}: {counts}")
    target = os.environ.get("AI_INFRA_MEASUREMENTS")
    if target:
        with Path(target).open("a") as handle:
            row = {"system": "checkov", "measurement": "scan", "stack": stack, "checkov": CHECKOV_VERSION, **counts}
            handle.write(json.dumps(row, sort_keys=True) + "\n")


# The stacks as shipped, and prod with the optional objects on (monitoring CRDs, the S3
# upload container of the backups), so an option cannot bring in an unscanned object.
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


@pytest.mark.parametrize("stack", list(SCANS))
def test_checkov_finds_nothing(stack, tmp_path):
    base, overrides = SCANS[stack]
    objects = render_stack(base, *overrides).objects
    report = scan(objects, tmp_path / stack)
    summary = report["summary"]
    record(stack, summary)
    skipped: dict[str, list[str]] = {}
    for entry in report["results"].get("skipped_checks", []):
        skipped.setdefault(entry["check_id"], []).append(entry["resource"].split(".")[-1])
    for check, resources in sorted(skipped.items()):
        print(f"  skipped {check} on {len(resources)}: {', '.join(sorted(resources))}")

    assert summary["parsing_errors"] == 0
    assert not failures(report), "checkov failed checks:\n" + "\n".join(failures(report))
    assert not reasonless_skips(report), "skips without a reason:\n" + "\n".join(reasonless_skips(report))
    # Every workload was scanned (a file checkov cannot read would pass silently).
    scanned = {entry["resource"].split(".")[0] + "." + entry["resource"].split(".")[-1] for entry in _entries(report)}
    expected = {f"{obj['kind']}.{obj['metadata']['name']}" for obj in objects if obj["kind"] in WORKLOAD_KINDS}
    assert expected and expected <= scanned, f"not scanned: {sorted(expected - scanned)}"
    assert summary["passed"] > 10 * len(expected)


def test_every_skip_sits_on_the_object_it_excuses(stack):
    """Skip annotations go on the object checkov reports (the workload's own metadata),
    never on a pod template, where checkov does not read them and they would hide in
    every pod. And each names a check with a reason."""
    for obj in render_stack(stack).objects:
        templates = [obj.get("spec", {}).get("template", {}), obj.get("spec", {}).get("jobTemplate", {})]
        for template in templates:
            annotations = (template.get("metadata") or {}).get("annotations") or {}
            assert not [key for key in annotations if key.startswith("checkov.io/")], obj["metadata"]["name"]
        for key, value in ((obj["metadata"].get("annotations")) or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                where = (obj["metadata"]["name"], value)
                assert check.startswith("CKV") and len(reason.strip()) > 20 and "=" not in reason, where


def test_the_scan_catches_a_bad_workload_and_a_reasonless_skip(tmp_path):
    """The scan above can fail: checkov flags an insecure Deployment, and a skip
    annotation without a reason is reported as such."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "insecure",
            "namespace": "ai-infra",
            "annotations": {"checkov.io/skip1": "CKV_K8S_43"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "insecure"}},
            "template": {
                "metadata": {"labels": {"app": "insecure"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:latest", "securityContext": {"privileged": True}}]},
            },
        },
    }
    report = scan([bad], tmp_path / "bad")
    failed = {entry["check_id"] for entry in report["results"]["failed_checks"]}
    assert {"CKV_K8S_16", "CKV_K8S_8", "CKV_K8S_13"} <= failed, failed  # privileged, no probe, no memory limit
    assert reasonless_skips(report) == ["CKV_K8S_43 on Deployment.ai-infra.insecure"]


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    results = report["results"]
    return [*results.get("passed_checks", []), *results.get("failed_checks", []), *results.get("skipped_checks", [])]


def test_skip_helper_refuses_what_checkov_would_misread():
    from components.k8s import checkov_skips

    assert checkov_skips({"CKV_K8S_43": "pinned by version tag"}) == {"checkov.io/skip1": "CKV_K8S_43=pinned by version tag"}
    for bad in ({"CKV_K8S_43": " "}, {"CKV_K8S_43": "a=b"}, {"K8S_43": "reason"}):
        with pytest.raises(ValueError):
            checkov_skips(bad)
    # The annotation round-trips through YAML as checkov reads it.
    assert yaml.safe_load(yaml.safe_dump(checkov_skips({"CKV_K8S_15": "x: y"}))) == {"checkov.io/skip1": "CKV_K8S_15=x: y"}
