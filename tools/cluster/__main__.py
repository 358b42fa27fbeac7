"""python -m tools.cluster up [--nodes N] | down | status | host | build | images [--push] | node stop|start NAME

The local cluster: a real multi-node Kubernetes built from the Go module proxy, each node
its own network, mount and cgroup namespace on this machine (like kind, without Docker).
See the README's "Local cluster" section.
"""

from __future__ import annotations

import argparse
import sys

from tools.cluster.util import ClusterError, say


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__.splitlines()[2])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster, or add nodes to it (idempotent)")
    up.add_argument("--nodes", type=int, default=1)
    up.add_argument("--at-least", action="store_true", help="a running cluster with more nodes is fine as it is")
    sub.add_parser("down", help="stop the cluster and remove its namespaces, cgroups and state")
    sub.add_parser("status", help="say what runs")
    sub.add_parser("host", help="install the host packages the cluster needs (apt), nothing else")
    sub.add_parser("build", help="build (or reuse) the binaries and the add-on images")
    img = sub.add_parser("images", help="build images/*/Dockerfile on the Debian base")
    img.add_argument("--push", action="store_true", help="push them to the running cluster's registry")
    img.add_argument("--registry", default="", help="push them to this registry instead (buildah's login is used)")
    img.add_argument("only", nargs="*", help="image directories to build (default: all)")
    lose = sub.add_parser("node", help="lose a node as a host dies (every process killed, nothing drained), or boot it again")
    lose.add_argument("action", choices=("stop", "start"))
    lose.add_argument("name", help="the node, e.g. aim-node-3 (kubectl get nodes)")
    args = parser.parse_args(argv)
    from tools.cluster import lifecycle

    try:
        if args.command == "up":
            lifecycle.up(args.nodes, at_least=args.at_least)
        elif args.command == "down":
            lifecycle.down()
        elif args.command == "status":
            return lifecycle.status()
        elif args.command == "host":
            lifecycle.require_host()
        elif args.command == "build":
            from tools.cluster import build, images

            # the add-on images need buildah and mmdebstrap from the host, as `up` does
            lifecycle.require_host()
            images.ensure_addon_images(build.ensure_built())
        elif args.command == "node":
            from tools.cluster import outage

            (outage.stop_node if args.action == "stop" else outage.start_node)(args.name)
        elif args.command == "images":
            lifecycle.project_images(push=args.push, registry=args.registry, only=tuple(args.only))
    except ClusterError as exc:
        say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
