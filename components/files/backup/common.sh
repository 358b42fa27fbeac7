# shellcheck shell=bash
# Helpers shared by the backup scripts (sourced, not run). bash.
#
# Layout of a destination (the backup volume, or the scratch volume before an upload):
#   $BACKUP_DIR/<system>/<UTC timestamp>/...        one complete backup
#   $BACKUP_DIR/<system>/<UTC timestamp>.partial/    one being written (never restored from)
# A backup is written into the .partial directory and renamed when it is complete and
# verified, so a run killed half-way never leaves something that looks like a backup.
# Timestamps (20261126T020000Z) sort in time order as plain strings.
#
# Environment:
#   BACKUP_DIR         root of the destination (the mounted volume)
#   BACKUP_RETENTION   number of complete backups kept per system (>= 1)

export LC_ALL=C
# `set -e` also inside $(...): a helper whose command fails must fail the backup.
shopt -s inherit_errexit

log() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# require NAME...: every named variable is set and not empty.
require() {
    local name
    for name in "$@"; do
        [ -n "${!name:-}" ] || die "$name is not set"
    done
}

# begin_backup SYSTEM: prints the .partial directory a new backup is written into, after
# removing what a killed earlier run left behind.
begin_backup() {
    local root="$BACKUP_DIR/$1" stamp
    mkdir -p "$root"
    rm -rf -- "$root"/*.partial "$root"/*.partial.sums
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    [ ! -e "$root/$stamp" ] || die "a backup named $stamp already exists in $root"
    mkdir -- "$root/$stamp.partial"
    printf '%s\n' "$root/$stamp.partial"
}

# finish_backup PARTIAL_DIR: checksums every file, then makes the backup visible by
# renaming it to its timestamp. Prints the final directory.
finish_backup() {
    local partial=$1 final
    final=${partial%.partial}
    (cd "$partial" && find . -type f -printf '%P\n' | sort | xargs -r -d '\n' sha256sum > "$partial.sums")
    mv -- "$partial.sums" "$partial/SHA256SUMS"
    mv -- "$partial" "$final"
    printf '%s\n' "$final"
}

# backups SYSTEM: the complete backups of SYSTEM, oldest first (names only).
backups() {
    local root="$BACKUP_DIR/$1" entry
    for entry in "$root"/[0-9]*Z; do
        [ -d "$entry" ] && printf '%s\n' "${entry##*/}"
    done | sort
}

# prune SYSTEM KEEP: removes all but the KEEP newest complete backups of SYSTEM. Runs
# only after a new backup is complete, so there are never fewer than KEEP good ones.
prune() {
    local system=$1 keep=$2 total name
    [ "$keep" -ge 1 ] 2>/dev/null || die "retention must be a number >= 1, got '$keep'"
    mapfile -t names < <(backups "$system")
    total=${#names[@]}
    for name in "${names[@]:0:$((total > keep ? total - keep : 0))}"; do
        rm -rf -- "${BACKUP_DIR:?}/$system/$name"
        log "pruned $system backup $name (keeping the newest $keep)"
    done
}

# wait_for_server WHAT COMMAND...: run COMMAND until it succeeds, for at most
# BACKUP_CONNECT_WAIT_SECONDS (120). A new pod's first connections can be refused while
# the network policy for it is still being programmed, and a server may be restarting.
wait_for_server() {
    local what=$1 deadline=$((SECONDS + ${BACKUP_CONNECT_WAIT_SECONDS:-120}))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what does not accept connections"
        sleep 2
    done
}
