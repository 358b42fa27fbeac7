"""The roll Job (components/files/patroni/roll.py) against a simulated cluster: the API
server's StatefulSet, pods and evictions, and Patroni's /cluster and /switchover. What it
must do: restart replicas first (asynchronous before the synchronous standby), move the
leader once by a switchover to an updated standby and only then restart it, never touch a
cluster that is not whole, and do nothing when every pod is current. Its run on the local
cluster is tests/prod/test_day2.py."""

from __future__ import annotations

import itertools
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Objects
from tests.unit import patroni_scripts

NAMESPACE = "ai-infra-prod"
STATEFULSET = "ai-infra-patroni"
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"

ObjectsOf = Callable[..., Objects]


@dataclass
class SimPod:
    name: str
    role: str  # Patroni's: leader, sync_standby, replica
    revision: str = "old"
    uid: int = 0
    ready: bool = True
    state: str = "streaming"

    def item(self) -> dict[str, Any]:
        return {
            "metadata": {"name": self.name, "uid": str(self.uid), "labels": {"controller-revision-hash": self.revision}},
            "status": {"podIP": self.name, "conditions": [{"type": "Ready", "status": "True" if self.ready else "False"}]},
        }


@dataclass
class SimCluster:
    """Answers the script's requests; every eviction re-creates the pod at once on the
    update revision, as the StatefulSet controller does with OnDelete."""

    pods: dict[str, SimPod]
    update_revision: str = "new"
    observed: bool = True
    refuse_evictions: int = 0  # the next N evictions get 429
    events: list[str] = field(default_factory=list)
    uids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def api(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        if path.endswith(f"/statefulsets/{STATEFULSET}"):
            generation = 2
            return {
                "metadata": {"generation": generation},
                "spec": {"replicas": len(self.pods)},
                "status": {"observedGeneration": generation if self.observed else 1, "updateRevision": self.update_revision},
            }
        if method == "GET" and path.startswith(PODS_PATH + "?labelSelector="):
            return {"items": [pod.item() for pod in self.pods.values()]}
        if method == "POST" and path.endswith("/eviction"):
            name = path.split("/")[-2]
            if self.refuse_evictions:
                self.refuse_evictions -= 1
                self.events.append(f"refused {name}")
                raise urllib.error.HTTPError(path, 429, "Too Many Requests", {}, None)  # type: ignore[arg-type]
            pod = self.pods[name]
            assert body["deleteOptions"]["preconditions"]["uid"] == str(pod.uid)
            role = "replica" if pod.role == "leader" else pod.role
            self.pods[name] = SimPod(name, role, self.update_revision, next(self.uids))
            self.events.append(f"evict {name}")
            return {}
        raise AssertionError(f"unexpected API call {method} {path}")

    def patroni(self, method: str, ip: str, path: str, body: Any = None) -> Any:
        if method == "GET" and path == "/cluster":
            return {
                "members": [
                    {"name": pod.name, "role": pod.role, "state": "running" if pod.role == "leader" else pod.state}
                    for pod in self.pods.values()
                ]
            }
        if method == "POST" and path == "/switchover":
            leader, candidate = self.pods[body["leader"]], self.pods[body["candidate"]]
            assert ip == leader.name and leader.role == "leader"
            leader.role, candidate.role = candidate.role, "leader"
            self.events.append(f"switchover {leader.name}->{candidate.name}")
            return "Successfully switched over"
        raise AssertionError(f"unexpected Patroni call {method} {path}")


def roll_module(objects: Objects, cluster: SimCluster) -> Any:
    module = patroni_scripts.load(objects, "roll.py")
    module.api = cluster.api
    module._patroni = cluster.patroni
    module.namespace = lambda: NAMESPACE
    module.POLL_SECONDS = 0
    return module


def three(leader: str = "ai-infra-patroni-2") -> dict[str, SimPod]:
    roles = {leader: "leader"}
    others = [f"ai-infra-patroni-{i}" for i in range(3) if f"ai-infra-patroni-{i}" != leader]
    roles[others[0]] = "sync_standby"
    roles[others[1]] = "replica"
    return {name: SimPod(name, roles[name], uid=i) for i, name in enumerate(sorted(roles))}


def test_the_leader_moves_once_after_every_replica_asynchronous_first(objects_of: ObjectsOf) -> None:
    cluster = SimCluster(three(leader="ai-infra-patroni-0"))
    assert roll_module(objects_of("prod"), cluster).main() == 0
    assert cluster.events == [
        "evict ai-infra-patroni-2",  # the asynchronous replica
        "evict ai-infra-patroni-1",  # the synchronous standby
        "switchover ai-infra-patroni-0->ai-infra-patroni-1",  # to an updated standby
        "evict ai-infra-patroni-0",
    ]
    assert {pod.revision for pod in cluster.pods.values()} == {"new"}
    assert [pod.name for pod in cluster.pods.values() if pod.role == "leader"] == ["ai-infra-patroni-1"]


def test_nothing_happens_when_every_pod_runs_the_current_template(objects_of: ObjectsOf) -> None:
    pods = three()
    for pod in pods.values():
        pod.revision = "new"
    cluster = SimCluster(pods)
    assert roll_module(objects_of("prod"), cluster).main() == 0
    assert cluster.events == []


def test_a_refused_eviction_is_retried_until_the_budget_allows_it(objects_of: ObjectsOf) -> None:
    cluster = SimCluster(three(), refuse_evictions=2)
    assert roll_module(objects_of("prod"), cluster).main() == 0
    assert cluster.events[:3] == ["refused ai-infra-patroni-1", "refused ai-infra-patroni-1", "evict ai-infra-patroni-1"]


def test_nothing_is_restarted_while_the_cluster_is_not_whole(objects_of: ObjectsOf) -> None:
    pods = three()
    pods["ai-infra-patroni-0"].state = "starting"  # a replica still catching up
    cluster = SimCluster(pods)
    roll = roll_module(objects_of("prod"), cluster)
    roll.DEADLINE_SECONDS = 0.2
    assert roll.main() == 1
    assert cluster.events == []


def test_nothing_is_restarted_before_the_controller_has_seen_the_new_template(objects_of: ObjectsOf) -> None:
    cluster = SimCluster(three(), observed=False)
    roll = roll_module(objects_of("prod"), cluster)
    roll.DEADLINE_SECONDS = 0.2
    assert roll.main() == 1
    assert cluster.events == []


def test_a_single_member_is_restarted_without_a_switchover(objects_of: ObjectsOf) -> None:
    cluster = SimCluster({"ai-infra-patroni-0": SimPod("ai-infra-patroni-0", "leader")})
    assert roll_module(objects_of("dev"), cluster).main() == 0
    assert cluster.events == ["evict ai-infra-patroni-0"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_statefulset_leaves_restarts_to_the_roll_job(objects_of: ObjectsOf, stack: str) -> None:
    objects = objects_of(stack)
    statefulset = objects.get("StatefulSet", STATEFULSET)
    assert statefulset["spec"]["updateStrategy"] == {"type": "OnDelete"}
    job = objects.get("Job", "ai-infra-patroni-roll")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ai-infra-patroni-roll"
    assert pod["containers"][0]["command"] == ["python3", "/etc/patroni/roll.py"]
    assert pod["containers"][0]["image"] == statefulset["spec"]["template"]["spec"]["containers"][0]["image"]
    # never counted as a member: not in the PodDisruptionBudget's or the anti-affinity's selector
    member_labels = statefulset["spec"]["selector"]["matchLabels"]
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not all(job_labels.get(key) == value for key, value in member_labels.items())
    rules = objects.get("Role", "ai-infra-patroni-roll")["rules"]
    assert {(rule["resources"][0], verb) for rule in rules for verb in rule["verbs"]} == {
        ("statefulsets", "get"), ("pods", "get"), ("pods", "list"), ("pods/eviction", "create"),
    }  # fmt: skip


def test_a_template_change_reruns_the_roll_job_and_a_scale_does_not(objects_of: ObjectsOf) -> None:
    def checksum(*changes: str) -> str:
        job = objects_of("prod", *changes).get("Job", "ai-infra-patroni-roll")
        return str(job["spec"]["template"]["metadata"]["annotations"]["ai-infra-matrix/statefulset-template-checksum"])

    base = checksum()
    assert checksum("patroni.image.tag=16.4-day2") != base
    assert checksum("patroni.postgresql.parameters.max_connections=300") != base
    assert checksum("patroni.replicaCount=5") == base
