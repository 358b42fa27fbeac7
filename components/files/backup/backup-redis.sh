#!/usr/bin/env bash
# RDB snapshot of every Redis Cluster master, run by the <release>-backup-redis CronJob
# with the Redis image.
#
# Why `redis-cli --rdb` and not BGSAVE + copy: BGSAVE writes dump.rdb onto the master's
# own ReadWriteOnce volume, which no other pod can read, and the cluster persists with AOF
# (save ""), so that file would not even be what a restarted node loads. `--rdb` asks the
# master for a snapshot over the replication protocol: the master forks exactly as for
# BGSAVE and streams the point-in-time RDB to this Job (diskless), which writes it into
# the backup volume. One file per master; together they hold every slot.
#
# Environment (every redis-cli call authenticates from REDISCLI_AUTH, the Secret; the
# password is never an argument):
#   REDIS_SEED_HOST REDIS_PORT      any node (the client Service): the cluster map is read from it
#   REDISCLI_AUTH                   the cluster password
#   BACKUP_DIR BACKUP_RETENTION     see common.sh
#   BACKUP_RDB_TIMEOUT_SECONDS      limit for one master's snapshot (default 900)
#   BACKUP_CONNECT_WAIT_SECONDS     wait this long for the seed node to answer (default 120)
# Output: $BACKUP_DIR/redis/<timestamp>/{cluster-nodes.txt,<node-id>.rdb...,SHA256SUMS}
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require REDIS_SEED_HOST REDIS_PORT REDISCLI_AUTH BACKUP_DIR BACKUP_RETENTION

rcli() {
    timeout 10 redis-cli --no-auth-warning -h "$REDIS_SEED_HOST" -p "$REDIS_PORT" "$@"
}

wait_for_server "$REDIS_SEED_HOST:$REDIS_PORT" rcli PING
info=$(rcli CLUSTER INFO | tr -d '\r') || die "cannot reach $REDIS_SEED_HOST:$REDIS_PORT"
# A snapshot of a cluster with uncovered slots would silently miss their keys.
grep -q '^cluster_state:ok$' <<<"$info" || die "cluster state is not ok; not taking a partial backup"
grep -q '^cluster_slots_assigned:16384$' <<<"$info" || die "not every slot is assigned; not taking a partial backup"
nodes=$(rcli CLUSTER NODES | tr -d '\r')

# Masters that own slots: "<id> <ip>:<port>@<bus>[,<hostname>] <flags> ... <slot ranges>".
mapfile -t masters < <(awk '$3 ~ /(^|,)master(,|$)/ && $3 !~ /fail/ && NF >= 9 { split($2, a, "@"); print $1, a[1] }' <<<"$nodes")
[ "${#masters[@]}" -gt 0 ] || die "no master owns slots"

work=$(begin_backup redis)
printf '%s\n' "$nodes" > "$work/cluster-nodes.txt"
started=$SECONDS
for entry in "${masters[@]}"; do
    id=${entry%% *}
    address=${entry#* }
    host=${address%:*}
    port=${address##*:}
    log "snapshot of master $id at $host:$port"
    timeout "${BACKUP_RDB_TIMEOUT_SECONDS:-900}" \
        redis-cli --no-auth-warning -h "$host" -p "$port" --rdb "$work/$id.rdb" >&2 ||
        die "snapshot of $id ($host:$port) failed"
    [ "$(head -c 5 "$work/$id.rdb")" = "REDIS" ] || die "$id.rdb is not an RDB file"
done
final=$(finish_backup "$work")
log "snapshot complete: ${#masters[@]} masters, $(du -sb "$final" | cut -f1) bytes in $((SECONDS - started)) s into $final"

prune redis "$BACKUP_RETENTION"
log "backups kept: $(backups redis | tr '\n' ' ')"
