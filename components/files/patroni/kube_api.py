"""The Kubernetes API as a pod's service account sees it, for the scripts beside this file
(on-role-change.py, roll.py): one request, JSON in and out, with the standard in-cluster
environment (KUBERNETES_SERVICE_HOST/PORT, the mounted token, CA and namespace). The
Patroni image has no Kubernetes client but Patroni's own, which is not an API to build on.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT = 5
JSON_PATCH = "application/json-patch+json"


def namespace() -> str:
    return (ACCOUNT / "namespace").read_text().strip()


def api(method: str, path: str, body: Any = None, *, content_type: str = "application/json") -> Any:
    """One request to the API server; ``body`` goes as JSON of ``content_type``. Raises
    urllib's HTTPError (an OSError) for a status of 400 and above."""
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = (ACCOUNT / "token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(f"https://{host}:{port}{path}", data=data, headers=headers, method=method)
    context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
        return json.load(response)
