"""Roll the members of the @{scope} cluster onto the StatefulSet's current template, the
leader last and handed over first, so a rolled template moves the leader exactly once.

The StatefulSet's updateStrategy is OnDelete: the StatefulSet controller creates pods from
the new template, but only this Job (run by `pulumi up` after every template change)
decides when an old one goes. A RollingUpdate restarts the highest ordinal first whatever
its role, so the leader could be restarted first and the member that took over from it
restarted next: two failovers, each a write gap, for one change.

One member at a time, and only while the cluster is whole (every member Ready, one
running leader, every replica streaming):
1. replicas still on an old revision, asynchronous ones before the synchronous standby
   (which keeps acknowledging commits meanwhile), each evicted and waited for until its
   new pod is Ready and streaming;
2. then the leader: a planned switchover (Patroni's REST API) to an updated synchronous
   standby, which loses nothing and pauses writes for about a second, then the old
   leader evicted like a replica. A single member has nobody to hand over to: it is evicted.

Evictions, not deletions: the disruption controller has the last word, so a node drain
going on at the same time never takes a second member (the PodDisruptionBudget allows one).

The script is idempotent: run again (a retried Job pod, a second `pulumi up`) it finds
what is left to do, and with nothing left it exits at once.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

from kube_api import api, namespace

# No decorators in this file: the renderer takes an at sign for the start of a placeholder.
STATEFULSET = "@{statefulset}"
SELECTOR: dict[str, str] = json.loads("""@{labels}""")
RESTAPI_PORT = int("@{restapi_port}")
REVISION_LABEL = "controller-revision-hash"  # the StatefulSet controller's, on every pod
DEADLINE_SECONDS = int("@{deadline_seconds}")  # a little under the Job's activeDeadlineSeconds
POLL_SECONDS = 2
STANDBY_ROLES = ("sync_standby", "quorum_standby")  # Patroni's names in synchronous and quorum mode


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} roll: {message}", flush=True)


class Pod(NamedTuple):
    name: str
    uid: str
    revision: str
    ready: bool
    terminating: bool
    ip: str


class Member(NamedTuple):
    """A member as Patroni's /cluster reports it."""

    name: str
    role: str
    state: str

    def leads(self) -> bool:
        return self.role in ("leader", "master", "standby_leader")


class Deadline(Exception):
    pass


class Roll:
    def __init__(self, ns: str, deadline: float):
        self.ns = ns
        self.deadline = deadline

    # --- what the API server and Patroni say ---------------------------------------------

    def statefulset(self) -> dict[str, Any]:
        return api("GET", f"/apis/apps/v1/namespaces/{self.ns}/statefulsets/{STATEFULSET}")

    def pods(self) -> dict[str, Pod]:
        selector = urllib.parse.quote(",".join(f"{k}={v}" for k, v in sorted(SELECTOR.items())))
        listed = api("GET", f"/api/v1/namespaces/{self.ns}/pods?labelSelector={selector}")["items"]
        return {pod.name: pod for pod in map(_pod, listed)}

    def members(self, pods: dict[str, Pod]) -> dict[str, Member]:
        """Patroni's view of the cluster, from the first member that answers."""
        for pod in pods.values():
            if not pod.ip or pod.terminating:
                continue
            try:
                view = _patroni("GET", pod.ip, "/cluster")
            except (OSError, ValueError):
                continue
            return {m["name"]: Member(m["name"], m.get("role", ""), m.get("state", "")) for m in view.get("members", [])}
        return {}

    def whole(self, replicas: int, pods: dict[str, Pod], members: dict[str, Member]) -> str | None:
        """Why the cluster is not whole yet, or None when it is."""
        if len(pods) != replicas:
            return f"{len(pods)} of {replicas} pods exist"
        waiting = sorted(pod.name for pod in pods.values() if not pod.ready or pod.terminating)
        if waiting:
            return f"{', '.join(waiting)} not Ready"
        leaders = [m for m in members.values() if m.leads() and m.state == "running"]
        if len(leaders) != 1:
            return f"Patroni reports {len(leaders)} running leaders"
        behind = sorted(m.name for m in members.values() if not m.leads() and m.state != "streaming")
        if behind or set(members) != set(pods):
            return f"members not streaming yet: {', '.join(behind) or 'not all in /cluster'}"
        return None

    # --- waiting and acting ----------------------------------------------------------------

    def wait(self, what: str, check: Any) -> Any:
        """``check()``'s first truthy result; the last reason it gave is logged at most every 30 s."""
        said = 0.0
        while True:
            if time.monotonic() > self.deadline:
                raise Deadline(f"gave up waiting for {what}")
            try:
                result = check()
            except (OSError, ValueError, KeyError) as error:
                result = None
                reason = str(error)
            else:
                reason = "" if result else "not yet"
            if result:
                return result
            if time.monotonic() - said > 30:
                log(f"waiting for {what}: {reason}")
                said = time.monotonic()
            time.sleep(POLL_SECONDS)

    def target(self) -> tuple[str, int]:
        """The revision every pod must run, once the controller has seen the latest spec."""

        def observed() -> tuple[str, int] | None:
            sts = self.statefulset()
            status = sts.get("status", {})
            if status.get("observedGeneration", 0) < sts["metadata"]["generation"] or not status.get("updateRevision"):
                return None
            return status["updateRevision"], sts["spec"].get("replicas", 1)

        return self.wait("the StatefulSet controller to observe the new template", observed)

    def evict(self, pod: Pod, revision: str) -> None:
        """Evict ``pod`` (retried while the disruption budget says no) and wait for its
        successor to be Ready on ``revision``."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod.name, "namespace": self.ns},
                "deleteOptions": {"preconditions": {"uid": pod.uid}}}  # fmt: skip

        def evicted() -> bool:
            try:
                api("POST", f"/api/v1/namespaces/{self.ns}/pods/{pod.name}/eviction", body)
            except urllib.error.HTTPError as error:
                if error.code == 429:  # the PodDisruptionBudget allows no disruption now
                    raise OSError(f"eviction of {pod.name} refused for now: {_reason(error)}") from None
                if error.code in (404, 409):  # gone already, or replaced (the uid precondition)
                    return True
                raise
            return True

        log(f"evicting {pod.name} (revision {pod.revision})")
        self.wait(f"the eviction of {pod.name}", evicted)

        def successor_ready() -> bool:
            new = self.pods().get(pod.name)
            return bool(new and new.uid != pod.uid and new.ready and new.revision == revision)

        self.wait(f"{pod.name} to be Ready on revision {revision}", successor_ready)
        log(f"{pod.name} is Ready on revision {revision}")

    def switchover(self, leader: Pod, candidate: str) -> None:
        log(f"switching over from {leader.name} to {candidate}")

        def switched() -> bool:
            # a POST that timed out may still have worked: never ask twice
            new = self.members(self.pods()).get(candidate)
            if new and new.leads():
                return True
            try:
                _patroni("POST", leader.ip, "/switchover", {"leader": leader.name, "candidate": candidate})
            except urllib.error.HTTPError as error:
                raise OSError(f"Patroni refused the switchover: {_reason(error)}") from None
            return True

        self.wait(f"a switchover to {candidate}", switched)

        def candidate_leads() -> bool:
            members = self.members(self.pods())
            new = members.get(candidate)
            return bool(new and new.leads() and new.state == "running")

        self.wait(f"{candidate} to lead", candidate_leads)
        log(f"{candidate} leads")

    def step(self) -> bool:
        """One restart (or switchover and restart); False when every pod is on the target."""
        revision, replicas = self.target()
        pods = self.pods()
        stale = {name: pod for name, pod in pods.items() if pod.revision != revision}
        if not stale:
            return False

        def ready_to_restart() -> dict[str, Member] | None:
            current = self.pods()
            members = self.members(current)
            reason = self.whole(replicas, current, members)
            if reason:
                raise ValueError(reason)
            return members

        members: dict[str, Member] = self.wait("the cluster to be whole", ready_to_restart)
        pods = self.pods()
        stale = {name: pod for name, pod in pods.items() if pod.revision != revision}
        leader = next(name for name, member in members.items() if member.leads())
        followers = sorted((pod for name, pod in stale.items() if name != leader),
                           key=lambda pod: (_role(members, pod.name) in STANDBY_ROLES, pod.name))  # fmt: skip
        if followers:
            self.evict(followers[0], revision)
        elif leader in stale:
            if replicas > 1:
                updated = [m for name, m in members.items() if name != leader and pods[name].revision == revision]
                candidates = sorted(updated, key=lambda m: (m.role not in STANDBY_ROLES, m.name))
                if not candidates:
                    raise Deadline("no updated member to hand the leader over to")
                self.switchover(pods[leader], candidates[0].name)
            self.evict(pods[leader], revision)
        return True


def _role(members: dict[str, Member], name: str) -> str:
    member = members.get(name)
    return member.role if member else ""


def _pod(item: dict[str, Any]) -> Pod:
    metadata, status = item["metadata"], item.get("status", {})
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    return Pod(
        name=metadata["name"],
        uid=metadata["uid"],
        revision=metadata.get("labels", {}).get(REVISION_LABEL, ""),
        ready=conditions.get("Ready") == "True",
        terminating=bool(metadata.get("deletionTimestamp")),
        ip=status.get("podIP", ""),
    )


def _patroni(method: str, ip: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://{ip}:{RESTAPI_PORT}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    try:
        return json.loads(text)
    except ValueError:
        return text  # /switchover answers in plain text


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        detail = error.read().decode().strip()
    except OSError:
        detail = ""
    return f"HTTP {error.code} {detail[:300]}"


def main() -> int:
    roll = Roll(namespace(), time.monotonic() + DEADLINE_SECONDS)
    restarts = 0
    try:
        while roll.step():
            restarts += 1
    except Deadline as error:
        log(f"failed: {error}; the members still on an old revision stay as they are (`kubectl get pods "
            f"-L {REVISION_LABEL}`), and the next `pulumi up` runs this Job again")  # fmt: skip
        return 1
    log(f"every member runs the current template ({restarts} restarted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
