# shellcheck shell=bash
# The Redis Cluster Jobs' shared part (sourced by cluster-preflight.sh and
# cluster-reconcile.sh, not run): the topology the settings ask for, and how to read the
# cluster. Every decision is made from slot ownership read from the nodes, never from
# cluster_state. bash.
#
# Environment: REDISCLI_AUTH, REDIS_PORT, REDIS_NODE_HOST_TEMPLATE, REDIS_NODE_COUNT (N),
# REDIS_MASTER_COUNT (M), REDIS_REPLICAS_PER_MASTER (R), REDIS_DRAIN (yes|no),
# REDIS_WAIT_SECONDS (bound of every wait, 300).
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${REDISCLI_AUTH:?REDISCLI_AUTH must be set (the password, from the Secret)}"
N=${REDIS_NODE_COUNT:?}
M=${REDIS_MASTER_COUNT:?}
R=${REDIS_REPLICAS_PER_MASTER:?}
DRAIN=${REDIS_DRAIN:-no}
WAIT_SECONDS=${REDIS_WAIT_SECONDS:-300}
SLOTS=16384

[ "$N" -eq $((M * (1 + R))) ] || die "REDIS_NODE_COUNT=$N is not REDIS_MASTER_COUNT*(1+REDIS_REPLICAS_PER_MASTER)=$((M * (1 + R)))"

# --- reading the cluster -----------------------------------------------------------

declare -a ADDR  # ADDR[i]: IP of ordinal i (kept nodes, 0..N-1)
declare -A ORDINAL_OF_ID

# Wait until every kept node resolves and answers PING; fill ADDR and ORDINAL_OF_ID.
wait_for_nodes() {
    local deadline=$(($(date +%s) + WAIT_SECONDS)) i ip missing
    while :; do
        missing=""
        for i in $(seq 0 $((N - 1))); do
            ip=$(resolve "$(node_host "$i")")
            if [ -z "$ip" ] || ! is_up "$ip"; then
                missing="$missing $(node_host "$i")"
                continue
            fi
            ADDR[i]=$ip
        done
        [ -z "$missing" ] && break
        [ "$(date +%s)" -lt "$deadline" ] || die "nodes not answering PING after ${WAIT_SECONDS}s:$missing"
        sleep 2
    done
    for i in $(seq 0 $((N - 1))); do
        ORDINAL_OF_ID[$(rcli "${ADDR[i]}" CLUSTER MYID | tr -d '\r')]=$i
    done
}

myid_of() { rcli "$1" CLUSTER MYID | tr -d '\r'; }
nodes_of() { rcli "$1" CLUSTER NODES | tr -d '\r'; }
own_slots() { nodes_of "$1" | parse_nodes | awk '$6 ~ /myself/ { print $4 }'; }
known_count() { nodes_of "$1" | awk 'NF >= 8 { n++ } END { print n + 0 }'; }
dbsize() { rcli "$1" DBSIZE | tr -d '\r'; }

# A kept node that owns slots, to use as the seed of every cluster-wide command.
SEED=""
find_seed() {
    local i
    SEED=""
    for i in $(seq 0 $((N - 1))); do
        if [ "$(own_slots "${ADDR[i]}")" -gt 0 ]; then
            SEED=${ADDR[i]}
            return 0
        fi
    done
    return 1
}

# The cluster as the seed sees it, one line per healthy node:
#   <id> <role master|slave> <master-id or -> <slots> <ip:port>
topology() {
    nodes_of "$SEED" | parse_nodes | awk '$6 !~ /fail|handshake|noaddr/ { print $1, $2, $3, $4, $5 }'
}

# Masters that own slots, by the seed's view.
masters_owning_slots() { topology | awk '$2 == "master" && $4 > 0' | wc -l; }

# refuse_master_count_drop MASTERS: fail, changing nothing, when the cluster has more
# masters owning slots than M and this run may not drain them.
refuse_master_count_drop() {
    [ "$1" -gt "$M" ] && [ "$DRAIN" != yes ] || return 0
    die "the cluster has $1 masters owning slots but redisCluster.masterCount is $M." \
        "Lowering the master count needs redisCluster.drain.enabled=true (and" \
        "redisCluster.drain.fromMasterCount=$1); nothing was changed."
}

# by_ordinal [-r]: node IDs on stdin, ordered by their pod's ordinal (-r: highest first);
# a node on no kept ordinal sorts as 999.
by_ordinal() {
    local id
    while read -r id; do echo "${ORDINAL_OF_ID[$id]:-999} $id"; done | sort -n "$@" | awk '{ print $2 }'
}

# The master among "masters owning slots" with the fewest replicas (ties: lowest ordinal).
fewest_replicas_master() {
    topology | awk '
        $2 == "master" && $4 > 0 { masters[$1] = 1; count[$1] += 0 }
        $2 == "slave" { count[$3]++ }
        END { for (m in masters) print count[m], m }' | sort -n -k1,1 -k2,2 | awk 'NR == 1 { print $2 }'
}

cluster_ok() {
    local out
    out=$(rcluster --cluster check "$SEED:$REDIS_PORT" 2>&1 || true)
    printf '%s\n' "$out" | grep -q "\\[OK\\] All $SLOTS slots covered" || return 1
    ! printf '%s\n' "$out" | grep -qE '\[ERR\]|\[WARNING\]'
}

fix_open_slots() {
    local attempt
    for attempt in 1 2 3; do
        cluster_ok && return 0
        log "fix: open or uncovered slots; running --cluster fix (attempt $attempt)"
        rcluster --cluster fix "$SEED:$REDIS_PORT" --cluster-yes >&2 || true
        sleep 2
    done
    cluster_ok || die "slots still open or uncovered after --cluster fix; see the output above"
}

rebalance() { # rebalance ARGS...: --cluster rebalance, retried with a fix between
    local attempt
    for attempt in 1 2 3; do
        if rcluster --cluster rebalance "$SEED:$REDIS_PORT" "$@" >&2; then
            return 0
        fi
        log "rebalance failed (attempt $attempt); fixing and retrying"
        fix_open_slots
    done
    die "rebalance did not succeed after 3 attempts"
}

wait_converged() { # until every node agrees and every replica has synced
    local deadline=$(($(date +%s) + WAIT_SECONDS)) i ip bad
    while :; do
        bad=""
        cluster_ok || bad="$bad slots-not-covered-or-open"
        for i in $(seq 0 $((N - 1))); do
            ip=${ADDR[i]}
            [ "$(info_field "$ip" cluster cluster_state)" = ok ] || bad="$bad $(node_host "$i"):cluster_state"
            if [ "$(info_field "$ip" replication role)" = slave ] &&
                [ "$(info_field "$ip" replication master_link_status)" != up ]; then
                bad="$bad $(node_host "$i"):replication-link"
            fi
        done
        [ -z "$bad" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || die "cluster not converged after ${WAIT_SECONDS}s:$bad"
        sleep 1
    done
}

wait_role() { # wait_role IP ROLE: up to 30 s
    local deadline=$(($(date +%s) + 30))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(info_field "$1" replication role)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
