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
Role allows pods get/list/patch), with the standard in-cluster environment. Anything that
goes wrong is printed and the callback exits 0: the label is an optimisation of routing,
never a reason to disturb Patroni.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROLE_LABEL = "@{role_label}"
LEADER_VALUE = "@{leader_label_value}"
CLUSTER_LABELS: dict[str, str] = json.loads("""@{labels}""")
ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT = 5


def _api(method: str, path: str, body: list[dict[str, Any]] | None = None) -> Any:
    """One request to the API server as the pod's service account (a JSON patch as ``body``)."""
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = (ACCOUNT / "token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json-patch+json"
    request = urllib.request.Request(f"https://{host}:{port}{path}", data=data, headers=headers, method=method)
    context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
        return json.load(response)


def stale_leaders(namespace: str, me: str) -> list[str]:
    selector = ",".join(f"{key}={value}" for key, value in sorted({**CLUSTER_LABELS, ROLE_LABEL: LEADER_VALUE}.items()))
    pods = _api("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={urllib.parse.quote(selector)}")
    return sorted(pod["metadata"]["name"] for pod in pods["items"] if pod["metadata"]["name"] != me)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[2] not in ("primary", "master"):
        return 0
    # Patroni hands its callbacks no PATRONI_* variables (it takes them out of its
    # environment): the namespace is the service account's, the member the pod's hostname.
    me = socket.gethostname()
    try:
        namespace = (ACCOUNT / "namespace").read_text().strip()
        stale = stale_leaders(namespace, me)
    except (OSError, KeyError, ValueError) as error:
        print(f"on_role_change: could not look for stale leader labels: {error}", file=sys.stderr, flush=True)
        return 0
    # only while it still says leader (the test op fails the patch otherwise): a pod whose
    # Patroni relabelled it meanwhile is left alone
    label = "/metadata/labels/" + ROLE_LABEL.replace("~", "~0").replace("/", "~1")
    patch = [{"op": "test", "path": label, "value": LEADER_VALUE}, {"op": "remove", "path": label}]
    for pod in stale:
        try:
            _api("PATCH", f"/api/v1/namespaces/{namespace}/pods/{urllib.parse.quote(pod)}", patch)
        except OSError as error:
            print(f"on_role_change: {pod}'s leader label stays: {error}", file=sys.stderr, flush=True)
            continue
        print(f"on_role_change: {me} leads; removed the stale {ROLE_LABEL}={LEADER_VALUE} label of {pod}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
