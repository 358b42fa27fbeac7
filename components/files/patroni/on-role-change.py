"""Patroni's on_role_change callback: on the member that has just become the leader, take
the leader label off every other pod of the cluster that still carries it.

Each Patroni member labels only its own pod. A leader lost with its node (a dead kubelet,
a power cut) keeps role=@{leader_label_value} until it runs again, and the node
controller marks it not Ready only after its node-monitor grace period (40-50 s): until
then the primary Service routes every other new connection to an address that no longer
answers, although a new leader is serving. By the time this member is promoted the old
leader's lock has expired (ttl), so that pod is no primary any more, whatever its label
says: the label goes, and Patroni sets the right one when that pod runs again.

Patroni runs it as `on-role-change.py ACTION ROLE SCOPE`; only ROLE "primary" (or the
pre-4.0 "master") acts. It talks to the API server with the pod's service account (the
Role allows pods get/list/patch), through kube_api.py beside it. Anything that
goes wrong is printed and the callback exits 0: the label is an optimisation of routing,
never a reason to disturb Patroni.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.parse

from kube_api import JSON_PATCH, api, namespace

ROLE_LABEL = "@{role_label}"
LEADER_VALUE = "@{leader_label_value}"
CLUSTER_LABELS: dict[str, str] = json.loads("""@{labels}""")


def stale_leaders(ns: str, me: str) -> list[str]:
    selector = ",".join(f"{key}={value}" for key, value in sorted({**CLUSTER_LABELS, ROLE_LABEL: LEADER_VALUE}.items()))
    pods = api("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector={urllib.parse.quote(selector)}")
    return sorted(pod["metadata"]["name"] for pod in pods["items"] if pod["metadata"]["name"] != me)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[2] not in ("primary", "master"):
        return 0
    # Patroni hands its callbacks no PATRONI_* variables (it takes them out of its
    # environment): the namespace is the service account's, the member the pod's hostname.
    me = socket.gethostname()
    try:
        ours = namespace()
        stale = stale_leaders(ours, me)
    except (OSError, KeyError, ValueError) as error:
        print(f"on_role_change: could not look for stale leader labels: {error}", file=sys.stderr, flush=True)
        return 0
    # only while it still says leader (the test op fails the patch otherwise): a pod whose
    # Patroni relabelled it meanwhile is left alone
    label = "/metadata/labels/" + ROLE_LABEL.replace("~", "~0").replace("/", "~1")
    patch = [{"op": "test", "path": label, "value": LEADER_VALUE}, {"op": "remove", "path": label}]
    for pod in stale:
        try:
            api("PATCH", f"/api/v1/namespaces/{ours}/pods/{urllib.parse.quote(pod)}", patch, content_type=JSON_PATCH)
        except OSError as error:
            print(f"on_role_change: {pod}'s leader label stays: {error}", file=sys.stderr, flush=True)
            continue
        print(f"on_role_change: {me} leads; removed the stale {ROLE_LABEL}={LEADER_VALUE} label of {pod}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
