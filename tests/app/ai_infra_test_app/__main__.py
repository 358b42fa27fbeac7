"""ai-infra-test-app [serve | selfcheck | connect HOST PORT | write SYSTEM]

serve       (default) HTTP on LISTEN_ADDRESS (0.0.0.0):PORT (8082, the backend's port)
selfcheck   run the self-check once, print its JSON, exit 0 only if every check passed
connect     open one TCP connection to HOST:PORT (exit 0) or report why not (exit 1):
            for tests of which flows the NetworkPolicies allow, from inside a pod
write       the drill writer: write to postgres, redis or kafka for --seconds, then read
            everything back; JSON lines (acks, errors, a summary); exit 3 if an
            acknowledged write was lost (writer.py)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from . import checks, server, writer


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ai-infra-test-app", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve HTTP (the default)")
    commands.add_parser("selfcheck", help="check PostgreSQL, Redis and Kafka once")
    connect = commands.add_parser("connect", help="one TCP connection")
    connect.add_argument("host")
    connect.add_argument("port", type=int)
    connect.add_argument("--timeout", type=float, default=3.0)
    write = commands.add_parser("write", help="write continuously, then verify (failover drills)")
    write.add_argument("system", choices=("postgres", "redis", "kafka"))
    write.add_argument("--seconds", type=float, default=60.0)
    write.add_argument("--replicas", type=int, default=1, help="redis: replicas WAIT must confirm")
    write.add_argument("--stop-file", default=None, help="stop writing early once this file exists")
    args = parser.parse_args(argv)
    if args.command == "write":
        return writer.main(args.system, args.seconds, args.replicas, stop_file=args.stop_file)
    if args.command == "selfcheck":
        report = checks.selfcheck()
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if report["ok"] else 1
    if args.command == "connect":
        try:
            with socket.create_connection((args.host, args.port), timeout=args.timeout):
                print(f"connected to {args.host}:{args.port}")
                return 0
        except OSError as error:
            print(f"cannot connect to {args.host}:{args.port}: {error}")
            return 1
    server.serve(os.environ.get("LISTEN_ADDRESS", "0.0.0.0"), int(os.environ.get("PORT", "8082")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
