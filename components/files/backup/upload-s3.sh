#!/bin/sh
# Uploads the backups a previous container of the same pod wrote into the scratch volume
# to S3-compatible storage, then applies the retention there. Runs in the AWS CLI image
# (amazon/aws-cli) as a non-root user; POSIX sh.
#
#   upload-s3.sh SYSTEM     SYSTEM: postgres or redis
#
# Objects: s3://$S3_BUCKET/$S3_PREFIX/<system>/<timestamp>/<file>. SHA256SUMS is uploaded
# last: a backup prefix without it is incomplete (an upload that was killed) and is not
# restored from; it is removed by the retention like any other old one.
#
# Environment (credentials from the Secret named in backup.s3.credentialsSecret, read by
# the AWS CLI itself; never an argument):
#   AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
#   S3_ENDPOINT (empty: AWS)  S3_BUCKET  S3_PREFIX  S3_FORCE_PATH_STYLE (true/false)
#   BACKUP_DIR BACKUP_RETENTION
set -eu
export LC_ALL=C

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

system=${1:?usage: upload-s3.sh postgres|redis}
for name in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET BACKUP_DIR BACKUP_RETENTION; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || die "$name is not set"
done
[ "$BACKUP_RETENTION" -ge 1 ] 2>/dev/null || die "retention must be a number >= 1, got '$BACKUP_RETENTION'"

# The CLI's config lives in the writable HOME (/tmp: the root filesystem is read-only).
export HOME="${HOME:-/tmp}"
export AWS_CONFIG_FILE="${AWS_CONFIG_FILE:-$HOME/aws-config}"
if [ "${S3_FORCE_PATH_STYLE:-true}" = "true" ]; then
    printf '[default]\ns3 =\n    addressing_style = path\n' > "$AWS_CONFIG_FILE"
else
    : > "$AWS_CONFIG_FILE"
fi
s3() {
    if [ -n "${S3_ENDPOINT:-}" ]; then
        aws --endpoint-url "$S3_ENDPOINT" s3 "$@"
    else
        aws s3 "$@"
    fi
}

base="s3://$S3_BUCKET/${S3_PREFIX:+$S3_PREFIX/}$system"
uploaded=0
for dir in "$BACKUP_DIR/$system"/[0-9]*Z; do
    [ -d "$dir" ] || continue
    stamp=${dir##*/}
    [ -f "$dir/SHA256SUMS" ] || die "$dir has no SHA256SUMS; not uploading an unverified backup"
    log "uploading $system backup $stamp to $base/$stamp/"
    s3 cp --only-show-errors --recursive --exclude SHA256SUMS "$dir/" "$base/$stamp/"
    s3 cp --only-show-errors "$dir/SHA256SUMS" "$base/$stamp/SHA256SUMS"
    uploaded=$((uploaded + 1))
done
[ "$uploaded" -gt 0 ] || die "no complete $system backup to upload in $BACKUP_DIR/$system"

# Retention: the prefixes named by a timestamp, oldest first; all but the newest N go.
# (The listing holds at least the backup just uploaded; a failure to list is an error.)
listing=$(s3 ls "$base/") || die "cannot list $base/"
stamps=$(printf '%s\n' "$listing" | awk '$1 == "PRE" { sub("/$", "", $2); print $2 }' | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort) ||
    die "no backup found in $base/ after the upload"
total=$(printf '%s\n' "$stamps" | grep -c .)
excess=$((total - BACKUP_RETENTION))
if [ "$excess" -gt 0 ]; then
    printf '%s\n' "$stamps" | head -n "$excess" | while read -r stamp; do
        s3 rm --only-show-errors --recursive "$base/$stamp/"
        log "pruned $system backup $stamp (keeping the newest $BACKUP_RETENTION)"
    done
fi
log "uploaded $uploaded $system backup(s); $((total > BACKUP_RETENTION ? BACKUP_RETENTION : total)) kept in $base/"
