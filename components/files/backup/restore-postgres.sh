#!/usr/bin/env bash
# Restores a dump written by backup-postgres.sh into the primary. Run in a pod made from
# the backup CronJob's pod template (README: "Restoring PostgreSQL"), which has this
# script, pg_restore of the server's version, the superuser's PGPASSWORD from the Secret
# and the backup volume.
#
#   restore-postgres.sh DUMP [--clean]
#
# DUMP: a <database>.dump of the backup volume (its SHA256SUMS is checked first), or - to
# read the dump from stdin (`kubectl exec -i ... < ai_infra_db.dump`, e.g. from S3).
# --clean: restore over the existing database, dropping and recreating every object the
# dump holds (an in-place restore); without it the database must be empty (a new cluster).
# Either way the restore is one transaction: it applies completely or not at all.
#
# Environment: PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE as for the backup;
# RESTORE_PGHOST, when set, replaces PGHOST (the backup may read a replica; a restore
# must write to the primary).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dump=${1:?usage: restore-postgres.sh DUMP|- [--clean]}
shift
clean=()
case ${1:-} in
--clean) clean=(--clean --if-exists) ;;
'') ;;
*) die "unknown option $1" ;;
esac
export PGHOST=${RESTORE_PGHOST:-${PGHOST:-}}
require PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
export PGAPPNAME=${PGAPPNAME:-ai-infra-restore} PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

archive=("$dump")
if [ "$dump" = "-" ]; then
    archive=() # pg_restore reads the archive from stdin
else
    [ -f "$dump" ] || die "$dump does not exist"
    if [ -f "$(dirname "$dump")/SHA256SUMS" ]; then
        (cd "$(dirname "$dump")" && sha256sum --check --quiet SHA256SUMS) || die "checksums of $(dirname "$dump") do not match"
    fi
fi
sql() { psql --no-psqlrc --no-password --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 -c "$1"; }
[ "$(sql 'SELECT pg_is_in_recovery()')" = "f" ] || die "$PGHOST:$PGPORT is a replica; set RESTORE_PGHOST to the primary Service"
if [ "${#clean[@]}" -eq 0 ]; then
    tables=$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
    [ "$tables" -eq 0 ] || die "database $PGDATABASE already has $tables tables; pass --clean to restore over them"
fi

log "restoring ${archive[0]:-stdin} into $PGDATABASE on $PGHOST:$PGPORT ${clean[*]:+(in place, ${clean[*]})}"
started=$SECONDS
pg_restore --dbname="$PGDATABASE" --no-password --exit-on-error --single-transaction "${clean[@]}" "${archive[@]}"
sql 'ANALYZE' >/dev/null
log "restore complete in $((SECONDS - started)) s"
