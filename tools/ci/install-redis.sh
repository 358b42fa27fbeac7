#!/usr/bin/env bash
# Installs what the Redis conformance tests run: Debian's redis-server and redis-tools
# (7.0.x on bookworm, the same major as the pinned image) and redis-py for the cluster
# client check. Idempotent and fast when everything is already there; run as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a system-wide redis-server on 6379; the tests run their own
# nodes on other ports, but stop the service so it does not take memory and CPU.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
elif [ -f /var/run/redis/redis-server.pid ] && kill -0 "$(cat /var/run/redis/redis-server.pid)" 2>/dev/null; then
    kill "$(cat /var/run/redis/redis-server.pid)" || true
fi

if ! "$PYTHON" -c 'import redis' >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "$(grep -E '^redis==' "$ROOT/requirements-dev.txt")"
fi

redis-server --version
"$PYTHON" -c 'import redis; print("redis-py", redis.__version__)'
