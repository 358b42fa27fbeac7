#!/usr/bin/env bash
# Logical backup of the application database, run by the <release>-backup-postgres
# CronJob with the Patroni image (its pg_dump is the server's major version).
#
# pg_dump --format=custom: compressed, verified below with pg_restore --list, and
# restorable selectively (one table) and in parallel (pg_restore -j). The dump is taken
# in one REPEATABLE READ snapshot, so it is consistent without stopping writes.
#
# Environment (libpq reads the PG* variables itself; the password only ever comes from
# PGPASSWORD, set from the Patroni Secret, never from an argument):
#   PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE   what to dump, and as whom
#   BACKUP_DIR BACKUP_RETENTION                  see common.sh
#   BACKUP_LOCK_WAIT_TIMEOUT                     give up when a table lock is not granted in time (default 120s)
#   BACKUP_CONNECT_WAIT_SECONDS                  wait this long for the server to accept connections (default 120)
# Output: $BACKUP_DIR/postgres/<timestamp>/{<database>.dump,<database>.toc,server.txt,SHA256SUMS}
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE BACKUP_DIR BACKUP_RETENTION
export PGAPPNAME=${PGAPPNAME:-ai-infra-backup} PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

wait_for_server "$PGHOST:$PGPORT" pg_isready --quiet

work=$(begin_backup postgres)
dump="$work/$PGDATABASE.dump"
log "dumping database $PGDATABASE from $PGHOST:$PGPORT into $work"
started=$SECONDS
psql --no-psqlrc --no-password --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 \
    -c "SELECT 'server_version=' || current_setting('server_version')" \
    -c "SELECT 'in_recovery=' || pg_is_in_recovery()" \
    -c "SELECT 'snapshot_time=' || now()" > "$work/server.txt"
pg_dump --format=custom --no-password --lock-wait-timeout="${BACKUP_LOCK_WAIT_TIMEOUT:-120s}" --file="$dump"
# A truncated or corrupt archive fails here, not on the day it is needed.
pg_restore --list "$dump" > "$work/$PGDATABASE.toc"
grep -q ' TABLE DATA ' "$work/$PGDATABASE.toc" || log "warning: the dump holds no table data"
final=$(finish_backup "$work")
log "dump complete: $final/$PGDATABASE.dump, $(stat -c %s "$final/$PGDATABASE.dump") bytes in $((SECONDS - started)) s"

prune postgres "$BACKUP_RETENTION"
log "backups kept: $(backups postgres | tr '\n' ' ')"
