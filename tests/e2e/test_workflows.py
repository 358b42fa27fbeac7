"""The pull-request and deploy workflows are valid GitHub Actions (actionlint) and use
the same make targets as a developer does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

ACTIONLINT_VERSION = "v1.7.12"  # tools/ci/install-actionlint.sh
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint() -> Path:
    path = Path.home() / ".cache/ai-infra-matrix/tools" / f"actionlint-{ACTIONLINT_VERSION}" / "actionlint"
    if not path.exists():
        pytest.fail(f"actionlint is not installed: run `bash tools/ci/install-actionlint.sh` (or `make deps`); looked in {path}")
    return path


def test_workflows_pass_actionlint():
    result = subprocess.run(
        [str(actionlint()), "-no-color", "-oneline"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_preview_dev_and_prod_with_a_pr_comment():
    workflow = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    assert list(workflow[True]["pull_request"]["branches"]) == ["main"]  # YAML 1.1 reads `on` as True
    job = workflow["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    pulumi = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make install" in runs


def test_main_deploys_through_make_and_pulumi_up():
    workflow = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())
    assert list(workflow[True]["push"]["branches"]) == ["main"]
    job = workflow["jobs"]["deploy"]
    assert job["concurrency"]["cancel-in-progress"] is False
    pulumi = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up"
