#!/usr/bin/env bash
# Installs what the PostgresHA conformance tests run, the same versions the image ships
# (images/patroni/Dockerfile): Debian bookworm's PostgreSQL 15, Patroni 4.1.5 from PyPI
# (with the etcd extra and psycopg 3) in a virtualenv, and Debian's etcd as the stand-in
# DCS. PostgreSQL refuses to run as root, so the tests run Patroni as the unprivileged
# `postgres` user the Debian package creates; the virtualenv therefore lives under /opt
# (readable by that user) and is built on Debian's /usr/bin/python3, not on a root-only
# interpreter. Idempotent and fast when everything is already there; run as root.
set -euo pipefail

PATRONI_VERSION="4.1.5"
PSYCOPG_VERSION="3.2.10"
VENV="${AI_INFRA_PATRONI_VENV:-/opt/ai-infra-matrix/patroni-$PATRONI_VERSION}"

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pg_rewind ] || missing+=(postgresql-15)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian packages may start a system-wide cluster on 5432 and an etcd on 2379; the
# tests run their own on other ports, but stop the services so they take no CPU/memory.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r version cluster _port status _rest; do
        if [ "$status" = "online" ]; then pg_ctlcluster "$version" "$cluster" stop || true; fi
    done
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl stop etcd || true
fi

if ! "$VENV/bin/patroni" --version 2>/dev/null | grep -F -- "$PATRONI_VERSION" >/dev/null; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "patroni[etcd]==$PATRONI_VERSION" "psycopg[binary]==$PSYCOPG_VERSION"
fi
chmod -R a+rX "$(dirname "$VENV")"

/usr/lib/postgresql/15/bin/postgres --version
etcd --version | sed -n 1p
"$VENV/bin/patroni" --version
