"""`make bench` without a cluster or an engine: the measurement, the readiness rule and the
deploy row's steps against fakes (the lead's run on the local cluster measures the rest)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tools import bench
from tools.benchmark import deploy, measure
from tools.benchmark.measure import Command, Sample

# --- measuring -----------------------------------------------------------------------------


def test_a_command_reports_its_time_and_its_own_peak_memory(tmp_path: Path):
    grow = "import time; block = bytearray(80 * 1024 * 1024); time.sleep(0.3)"
    sample = measure.run(Command([sys.executable, "-c", grow], tmp_path, watch_tree=True))
    assert sample.seconds >= 0.3
    assert sample.peak_rss_kib >= 80 * 1024  # the 80 MiB block is in the peak
    python = Path(sys.executable).name
    assert sample.programs[python] >= 80 * 1024, sample.programs  # and the watcher saw it by program name


def test_the_peak_is_the_commands_own_not_an_earlier_commands_nor_ours(tmp_path: Path):
    measure.run(Command([sys.executable, "-c", "block = bytearray(120 * 1024 * 1024)"], tmp_path))
    ballast = bytearray(150 * 1024 * 1024)  # our own peak, which a child forked from us would report
    small = measure.run(Command([sys.executable, "-c", "pass"], tmp_path))
    assert ballast and small.peak_rss_kib < 100 * 1024


def test_without_gnu_time_the_peak_comes_from_wait4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(measure, "GNU_TIME", tmp_path / "no-such-time")
    grow = "block = bytearray(80 * 1024 * 1024)"
    assert measure.run(Command([sys.executable, "-c", grow], tmp_path)).peak_rss_kib >= 80 * 1024


def test_a_failing_command_stops_the_bench_with_its_output(tmp_path: Path):
    with pytest.raises(measure.CommandFailed, match=r"exited 3:\nboom"):
        measure.run(Command([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path))


def test_runs_alternate_and_ratios_are_taken_pair_by_pair():
    order: list[str] = []
    seconds = iter([9.0, 9.0, 2.0, 1.0, 6.0, 2.0])  # warm-up pair, then two timed pairs

    def side(name: str):
        def run() -> Sample:
            order.append(name)
            return Sample(next(seconds))

        return run

    pairs = measure.interleave(side("A"), side("B"), runs=2)
    assert order == ["A", "B", "A", "B", "A", "B"]
    assert pairs.ratios == [2.0, 3.0]  # not median(A) / median(B) = 4.0 / 1.5


# --- readiness -----------------------------------------------------------------------------


def _workload(kind: str, name: str, replicas: int, ready: int, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    count = "availableReplicas" if kind == "Deployment" else "readyReplicas"
    return {
        "kind": kind,
        "metadata": {"name": name, "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, count: ready, "updatedReplicas": ready},
    }


def _job(name: str, condition: str | None, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {"kind": "Job", "metadata": meta, "status": {"conditions": conditions}}


def _pod(name: str, ready: bool, owner: str = "ReplicaSet", phase: str = "Running") -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "ownerReferences": [{"kind": owner, "name": "x"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_ready_means_every_replica_every_job_and_every_pod():
    ready = [
        _workload("Deployment", "web", 2, 2),
        _workload("StatefulSet", "db", 3, 3),
        _job("init", "Complete"),
        _job("nightly", None, owner="CronJob"),  # a scheduled run is not the deployment's
        _pod("web-1", ready=True),
        _pod("init-x", ready=False, owner="Job", phase="Succeeded"),
    ]
    assert deploy.not_ready(ready) == []
    assert deploy.not_ready([_workload("StatefulSet", "db", 3, 2)]) == ["StatefulSet/db: 2/3 ready, 2/3 updated"]
    assert deploy.not_ready([_workload("Deployment", "web", 1, 1, generation=2, observed=1)]) == [
        "Deployment/web: controller has not seen generation 2"
    ]
    assert deploy.not_ready([_job("init", None)]) == ["Job/init: not complete"]
    assert deploy.not_ready([_pod("web-1", ready=False)]) == ["Pod/web-1: not Ready (Running)"]
    with pytest.raises(deploy.JobFailed):
        deploy.not_ready([_job("init", "Failed")])


class FakeKubectl:
    """Answers `get` with the next canned namespace listing; records every call."""

    def __init__(self, listings: list[list[dict[str, Any]]], kubeconfig: Path = Path("/fake/kubeconfig")) -> None:
        self.listings = listings
        self.kubeconfig = kubeconfig
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 120) -> str:
        self.calls.append(args)
        return ""

    def json(self, *args: str) -> Any:
        self.calls.append(args)
        return {"items": self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]}


def test_the_wait_polls_until_ready_and_gives_up_at_its_timeout():
    now = [0.0]
    kubectl = FakeKubectl([[_workload("Deployment", "web", 1, 0)], [_workload("Deployment", "web", 1, 1)]])
    deploy.wait_ready(kubectl, "ns", clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] == deploy.POLL_SECONDS  # one wait between the two looks
    assert kubectl.calls[0] == ("get", "deployments,statefulsets,jobs,pods", "-n", "ns")

    never = FakeKubectl([[_workload("Deployment", "web", 1, 0)]])
    with pytest.raises(TimeoutError, match="Deployment/web: 0/1 ready"):
        deploy.wait_ready(never, "ns", timeout=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))


# --- the deploy row ------------------------------------------------------------------------


def test_without_a_cluster_the_deploy_rows_say_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AI_INFRA_CLUSTER_STATE", str(tmp_path))  # no state.json: no cluster
    assert deploy.local_cluster() is None
    rows = bench.deploy_rows(tmp_path, 5, ["dev", "prod"], [], deploy.local_cluster)
    assert [row.why_skipped for row in rows] == ["skipped: no cluster"] * 2
    assert all("| skipped: no cluster |" in line for line in bench.table(rows)[2:])


def _fake_cluster_state(state: Path, kubectl_exit: int) -> None:
    (state / "bin").mkdir(parents=True)
    (state / "state.json").write_text(json.dumps({"nodes": 1, "api_port": 1, "registry_port": 2, "cgroup_parents": {}}))
    kubectl = state / "bin" / "kubectl"
    kubectl.write_text(f'#!/bin/sh\necho "$@" >> {state}/calls\nexit {kubectl_exit}\n')
    kubectl.chmod(0o755)


def test_a_cluster_counts_only_when_its_api_server_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for exit_code, answers in ((1, False), (0, True)):
        state = tmp_path / str(exit_code)
        _fake_cluster_state(state, exit_code)
        monkeypatch.setenv("AI_INFRA_CLUSTER_STATE", str(state))
        found = deploy.local_cluster()
        assert (found is not None) == answers
        assert "get --raw /readyz" in (state / "calls").read_text()


def test_a_warning_kubectl_prints_does_not_break_the_json_it_answers(tmp_path: Path):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\necho "Warning: would violate PodSecurity" >&2\necho \'{"items": []}\'\n')
    kubectl.chmod(0o755)
    assert deploy.ClusterKubectl(kubectl, tmp_path / "kubeconfig").json("get", "pods") == {"items": []}


def _fake_pulumi(bin_dir: Path, exit_on_up: int = 0) -> Path:
    bin_dir.mkdir()
    log = bin_dir / "calls"
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncase "$1" in up) exit {exit_on_up};; esac\n')
    script.chmod(0o755)
    return log


def test_the_program_side_deploys_a_fresh_stack_into_a_fresh_namespace_and_removes_it(tmp_path: Path):
    log = _fake_pulumi(tmp_path / "bin")
    kubectl = FakeKubectl([[_workload("StatefulSet", "db", 1, 0)], [_workload("StatefulSet", "db", 1, 1)]])
    bench_ = deploy.DeployBench(tmp_path / "work", kubectl, "prod", ["kafka.replicaCount=5"], bin_dir=tmp_path / "bin")
    sample = bench_.program()
    assert sample.seconds > 0
    calls = log.read_text().splitlines()
    namespace = f"bench-prod-{bench_.tag}-1-up"
    assert calls[0] == "stack init prod --non-interactive"
    assert f"config set --path ai-infra-matrix:namespace {namespace} --stack prod --non-interactive" in calls
    assert "config set --path ai-infra-matrix:kubernetes.kubeconfig /fake/kubeconfig --stack prod --non-interactive" in calls
    assert "config set --path ai-infra-matrix:kafka.replicaCount 5 --stack prod --non-interactive" in calls
    assert calls[-1] == "up --yes --stack prod --non-interactive"
    gets = [call for call in kubectl.calls if call[0] == "get"]
    assert len(gets) == 2 and gets[0][-1] == namespace  # waited until ready, in that namespace
    assert kubectl.calls[-1][:3] == ("delete", "namespace", namespace)


def test_a_failed_up_still_removes_its_namespace(tmp_path: Path):
    _fake_pulumi(tmp_path / "bin", exit_on_up=1)
    kubectl = FakeKubectl([[]])
    bench_ = deploy.DeployBench(tmp_path / "work", kubectl, "dev", bin_dir=tmp_path / "bin")
    with pytest.raises(measure.CommandFailed, match="up --yes"):
        bench_.program()
    assert kubectl.calls[-1][:2] == ("delete", "namespace")


def test_the_floor_side_applies_the_rendered_objects_of_its_own_namespace(tmp_path: Path):
    kubectl = FakeKubectl([[_pod("web-1", ready=False)], [_pod("web-1", ready=True)]])
    bench_ = deploy.DeployBench(tmp_path, kubectl, "dev", bin_dir=tmp_path)
    bench_.floor()
    namespace = f"bench-dev-{bench_.tag}-1-apply"
    apply = next(call for call in kubectl.calls if call[0] == "apply")
    assert apply[:2] == ("apply", "--server-side")
    manifests = Path(apply[-1]).read_text()
    assert f"namespace: {namespace}\n" in manifests
    assert "namespace: ai-infra\n" not in manifests  # nothing lands in the stack's own namespace
    assert [call[0] for call in kubectl.calls] == ["apply", "get", "get", "delete"]
    assert kubectl.calls[-1][:3] == ("delete", "namespace", namespace)


def test_the_bench_prints_the_table_with_one_row_per_figure(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("AI_INFRA_CLUSTER_STATE", str(tmp_path))
    assert bench.main(["--runs", "1", "--rows", "render,deploy", "--deploy-stacks", "prod"]) == 0
    out = capsys.readouterr().out
    header, _, render, up = (line for line in out.splitlines() if line.startswith("|"))
    assert "ratio, pair by pair" in header
    assert render.startswith("| `tools/render.py --stack prod`") and render.count("x (") == 1
    assert "skipped: no cluster" in up
    assert f"{os.cpu_count()} cores, load average" in out


def test_with_event_logs_each_up_keeps_its_engine_events_in_a_file_of_its_own(tmp_path: Path):
    log = _fake_pulumi(tmp_path / "bin")
    kubectl = FakeKubectl([[], []])
    bench_ = deploy.DeployBench(tmp_path / "work", kubectl, "dev", bin_dir=tmp_path / "bin", event_logs=tmp_path / "events")
    bench_.program()
    bench_.program()
    ups = [call for call in log.read_text().splitlines() if call.startswith("up ")]
    files = [call.split("--event-log ")[1].split()[0] for call in ups]
    assert len(set(files)) == 2 and all(Path(name).parent == tmp_path / "events" for name in files)
