# shellcheck shell=bash
# Helpers shared by the Redis Cluster scripts (sourced, not run). bash.
#
# Every redis-cli call authenticates from the REDISCLI_AUTH environment variable, which
# the pod gets from the Secret: the password is never an argument (no -a).
#
# Environment:
#   REDIS_PORT                 port of every node (6379)
#   REDIS_NODE_HOST_TEMPLATE   printf template of node i's address, e.g.
#                              ai-infra-redis-cluster-%d.ai-infra-redis-cluster-headless.<namespace>.svc.<clusterDomain>

REDIS_PORT=${REDIS_PORT:-6379}

log() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# rcli HOST ARGS...: one command against one node; never hangs longer than 10 s.
rcli() {
    local host=$1
    shift
    timeout 10 redis-cli --no-auth-warning -h "$host" -p "$REDIS_PORT" "$@"
}

# rcluster ARGS...: redis-cli's cluster manager (--cluster create/check/fix/...).
rcluster() {
    redis-cli --no-auth-warning "$@"
}

# node_host I: the address (DNS name) of StatefulSet ordinal I.
node_host() {
    # shellcheck disable=SC2059
    printf "$REDIS_NODE_HOST_TEMPLATE" "$1"
}

# resolve NAME: its current IP, or nothing. Resolved again on every call: pod IPs change.
resolve() {
    case $1 in
    *[!0-9.]* | '') ;;
    *)
        echo "$1"
        return 0
        ;;
    esac
    case $1 in *:*)
        echo "$1"
        return 0
        ;;
    esac
    # getent exits 2 for a name that does not resolve (yet: a pod not created, or not in
    # DNS): that is an empty answer, not an error, under the callers' `set -e -o pipefail`
    { getent hosts "$1" 2>/dev/null || true; } | awk 'NR == 1 { print $1 }'
}

# is_up IP: the node answers PING with PONG.
is_up() {
    [ "$(rcli "$1" PING 2>/dev/null)" = "PONG" ]
}

# info_field IP SECTION FIELD: one field of INFO / CLUSTER INFO output.
info_field() {
    local ip=$1 section=$2 field=$3
    if [ "$section" = cluster ]; then
        rcli "$ip" CLUSTER INFO 2>/dev/null | tr -d '\r' | awk -F: -v f="$field" '$1 == f { print $2 }'
    else
        rcli "$ip" INFO "$section" 2>/dev/null | tr -d '\r' | awk -F: -v f="$field" '$1 == f { print $2 }'
    fi
}

# parse_nodes: CLUSTER NODES lines on stdin, one line out per node:
#   <id> <role master|slave> <master-id or -> <slots owned> <ip:port> <flags>
parse_nodes() {
    awk 'NF >= 8 {
        n = 0
        for (i = 9; i <= NF; i++) {
            if ($i ~ /^\[/) continue
            k = split($i, r, "-")
            n += (k == 2) ? r[2] - r[1] + 1 : 1
        }
        split($2, a, "@")
        role = ($3 ~ /master/) ? "master" : "slave"
        print $1, role, $4, n, a[1], $3
    }'
}
