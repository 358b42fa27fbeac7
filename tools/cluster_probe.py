#!/usr/bin/env python3
"""Is the cluster a stack points at reachable? `make up` asks before it deploys: a dev
stack without a cluster renders its manifests instead, a prod stack stops.

    python tools/cluster_probe.py --stack dev               # exit 0: reachable, 1: not (reason on stderr)
    python tools/cluster_probe.py --stack dev --configured  # exit 0: something names a cluster, 1: nothing does

The kubeconfig is the stack's `kubernetes.kubeconfig` (a path or the file's contents),
else $KUBECONFIG, else ~/.kube/config; the context is `kubernetes.context`, else the
current context. Reachable means the context's API server accepts a TCP connection
within a few seconds: enough to tell "no cluster here" from "a cluster to deploy to";
credentials are the provider's business.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settings.stack_file import stack_config  # noqa: E402

TIMEOUT_SECONDS = 3.0


def _kubeconfig(configured: str) -> tuple[dict | None, str]:
    if configured and "\n" in configured:
        return yaml.safe_load(configured), "kubernetes.kubeconfig (inline)"
    candidates = [configured] if configured else []
    candidates += [path for path in os.environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    candidates.append(str(Path.home() / ".kube" / "config"))
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return yaml.safe_load(path.read_text()), str(path)
    return None, " or ".join(candidates)


def configured(stack: str) -> str | None:
    """What names the cluster ``stack`` deploys to (the stack's kubernetes.* keys,
    $KUBECONFIG, ~/.kube/config), or None when nothing does."""
    raw, _ = stack_config(stack)
    cluster_config = raw.get("kubernetes") or {}
    for key in ("kubeconfig", "context", "renderYamlToDirectory"):
        if cluster_config.get(key):
            return f"ai-infra-matrix:kubernetes.{key}"
    if os.environ.get("KUBECONFIG"):
        return "$KUBECONFIG"
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def probe(stack: str) -> tuple[bool, str]:
    """(reachable, why) for the cluster ``stack`` would deploy to."""
    raw, _ = stack_config(stack)
    cluster_config = raw.get("kubernetes") or {}
    kubeconfig, source = _kubeconfig(str(cluster_config.get("kubeconfig") or ""))
    if not kubeconfig:
        return False, f"no kubeconfig found ({source})"
    context_name = cluster_config.get("context") or kubeconfig.get("current-context")
    if not context_name:
        return False, f"{source} names no current context; set ai-infra-matrix:kubernetes.context"
    contexts = {item["name"]: item.get("context", {}) for item in kubeconfig.get("contexts") or []}
    clusters = {item["name"]: item.get("cluster", {}) for item in kubeconfig.get("clusters") or []}
    cluster = clusters.get(contexts.get(context_name, {}).get("cluster", ""))
    if not cluster or not cluster.get("server"):
        return False, f"context {context_name!r} in {source} has no cluster server"
    url = urlsplit(cluster["server"])
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=TIMEOUT_SECONDS):
            return True, f"context {context_name!r}: {cluster['server']} answers"
    except OSError as error:
        return False, f"context {context_name!r}: {cluster['server']} does not answer ({error})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--configured", action="store_true", help="only say whether anything names a cluster")
    args = parser.parse_args()
    if args.configured:
        source = configured(args.stack)
        nothing = "nothing names a cluster (no kubernetes.kubeconfig/context, $KUBECONFIG or ~/.kube/config)"
        print(source or nothing, file=sys.stderr)
        return 0 if source else 1
    reachable, why = probe(args.stack)
    print(why, file=sys.stderr)
    return 0 if reachable else 1


if __name__ == "__main__":
    sys.exit(main())
