#!/usr/bin/env bash
# Imports a snapshot written by backup-redis.sh into the running Redis Cluster. Run in a
# pod made from the backup CronJob's pod template (README: "Restoring Redis"), which has
# this script, the Redis binaries, REDISCLI_AUTH from the Secret and the backup volume.
#
#   restore-redis.sh SNAPSHOT_DIR
#
# SNAPSHOT_DIR: a <timestamp> directory of the backup volume (cluster-nodes.txt, one
# <node-id>.rdb per master, SHA256SUMS). Each RDB is loaded by a temporary redis-server
# on 127.0.0.1 inside this pod (no password, reachable from this pod only), and
# `redis-cli --cluster import` copies its keys into the cluster, each to the master that
# owns its slot now: the target cluster may have a different number of masters. Keys of
# the same name are replaced (--cluster-replace); other keys in the cluster are kept.
#
# Environment: REDIS_SEED_HOST REDIS_PORT REDISCLI_AUTH (the target cluster);
# RESTORE_PORT: port of the temporary server (default 6390); RESTORE_AGREE_TIMEOUT: seconds
# to wait for the cluster's nodes to agree on the slot map before each import (default 120).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

snapshot=${1:?usage: restore-redis.sh SNAPSHOT_DIR}
require REDIS_SEED_HOST REDIS_PORT REDISCLI_AUTH
port=${RESTORE_PORT:-6390}
[ -f "$snapshot/SHA256SUMS" ] || die "$snapshot has no SHA256SUMS: not a complete snapshot"
(cd "$snapshot" && sha256sum --check --quiet SHA256SUMS) || die "checksums of $snapshot do not match"
rdbs=("$snapshot"/*.rdb)
[ -f "${rdbs[0]}" ] || die "no RDB file in $snapshot"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/restore-redis.XXXXXX")
local_cli() { env -u REDISCLI_AUTH redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" "$@"; }
stop_local() {
    local_cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    rm -rf -- "$scratch"
}
trap stop_local EXIT

# `--cluster import` refuses a cluster whose nodes do not agree on the slot map yet, which
# is how a cluster looks for a few seconds after it was created or changed: wait for the
# check to pass rather than fail the restore on gossip that has not converged.
cluster_agrees() {
    local deadline=$((SECONDS + ${RESTORE_AGREE_TIMEOUT:-120})) out
    until out=$(redis-cli --no-auth-warning --cluster check "$REDIS_SEED_HOST:$REDIS_PORT" 2>&1); do
        [ "$SECONDS" -lt "$deadline" ] || die "the cluster at $REDIS_SEED_HOST:$REDIS_PORT is not consistent; fix it first (redis-cli --cluster check):
$out"
        sleep 1
    done
}

started=$SECONDS
for rdb in "${rdbs[@]}"; do
    rm -rf -- "${scratch:?}"/*
    cp -- "$rdb" "$scratch/dump.rdb"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$scratch" --dbfilename dump.rdb --appendonly no --save '' \
        --daemonize yes --pidfile "$scratch/redis.pid" --logfile "$scratch/redis.log"
    deadline=$((SECONDS + 300))
    until [ "$(local_cli PING 2>/dev/null)" = "PONG" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "the temporary server did not load ${rdb##*/}: $(tail -5 "$scratch/redis.log")"
        sleep 1
    done
    keys=$(local_cli DBSIZE)
    cluster_agrees
    log "importing $keys keys of ${rdb##*/} into the cluster at $REDIS_SEED_HOST:$REDIS_PORT"
    redis-cli --no-auth-warning --cluster import "$REDIS_SEED_HOST:$REDIS_PORT" \
        --cluster-from "127.0.0.1:$port" --cluster-copy --cluster-replace >&2 ||
        die "import of ${rdb##*/} failed"
    local_cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    while [ -f "$scratch/redis.pid" ] && kill -0 "$(cat "$scratch/redis.pid")" 2>/dev/null; do sleep 0.2; done
done
log "restore complete: ${#rdbs[@]} snapshot file(s) imported in $((SECONDS - started)) s"
