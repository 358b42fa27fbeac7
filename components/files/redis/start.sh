#!/bin/bash
# Starts one Redis Cluster node (the container's command).
#
# After a restart the pod has a new IP, and after a full restart every nodes.conf lists
# peer addresses that no longer exist: the cluster would never heal by itself. So, when
# this node was already a cluster member, a background loop repairs the peer addresses
# in nodes.conf: it resolves every pod of the StatefulSet again, asks each one for its
# node ID, and for every node ID this node knows at a stale address sends CLUSTER MEET
# with the fresh one (Redis then rewrites nodes.conf); it also tells each peer this
# node's own new address. Fresh nodes are left alone: joining them is the Job's decision.
#
# For as long as the server runs, a second loop keeps a replica's replication link on its
# master's current address (follow_master below).
#
# Environment: POD_IP, REDISCLI_AUTH, REDIS_PORT, REDIS_NODE_HOST_TEMPLATE,
# REDIS_CONF (/etc/redis/redis.conf), REDIS_DATA_DIR (/data),
# REDIS_HEAL_SECONDS (how long the repair loop may run, 600),
# REDIS_FOLLOW_SECONDS (how often a replica checks its link, 5).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

: "${POD_IP:?POD_IP must be set (the pod IP, from the downward API)}"
: "${REDISCLI_AUTH:?REDISCLI_AUTH must be set (the password, from the Secret)}"
CONF=${REDIS_CONF:-/etc/redis/redis.conf}
DATA=${REDIS_DATA_DIR:-/data}
NODES_CONF="$DATA/nodes.conf"
HEAL_SECONDS=${REDIS_HEAL_SECONDS:-600}
FOLLOW_SECONDS=${REDIS_FOLLOW_SECONDS:-5}

# Lines of nodes.conf that describe other nodes (not "myself", not the vars line).
known_peers() {
    [ -s "$NODES_CONF" ] || {
        echo 0
        return
    }
    awk 'NF >= 8 && $3 !~ /myself/ { n++ } END { print n + 0 }' "$NODES_CONF"
}

heal_addresses() {
    local deadline=$(($(date +%s) + HEAL_SECONDS)) myid view i host ip peer_id addr theirs peers last
    last=$(($1 + 2))
    until is_up "$POD_IP"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 0
        sleep 1
    done
    myid=$(rcli "$POD_IP" CLUSTER MYID | tr -d '\r')
    while [ "$(date +%s)" -lt "$deadline" ]; do
        is_up "$POD_IP" || return 0 # the server is gone; the next start repairs
        view=$(rcli "$POD_IP" CLUSTER NODES | tr -d '\r')
        for i in $(seq 0 "$last"); do
            host=$(node_host "$i")
            ip=$(resolve "$host")
            if [ -z "$ip" ] || [ "$ip" = "$POD_IP" ]; then continue; fi
            peer_id=$(rcli "$ip" CLUSTER MYID 2>/dev/null | tr -d '\r') || continue
            [ -n "$peer_id" ] || continue
            addr=$(printf '%s\n' "$view" | awk -v id="$peer_id" '$1 == id { split($2, a, "@"); print a[1] }')
            [ -n "$addr" ] || continue # a node we never knew: not ours to join
            if [ "$addr" != "$ip:$REDIS_PORT" ]; then
                log "repair: node $peer_id ($host) moved from ${addr:-no address} to $ip:$REDIS_PORT"
                rcli "$POD_IP" CLUSTER MEET "$ip" "$REDIS_PORT" >/dev/null || true
            fi
            theirs=$(rcli "$ip" CLUSTER NODES 2>/dev/null | tr -d '\r' | awk -v id="$myid" '$1 == id { split($2, a, "@"); print a[1] }')
            if [ -n "$theirs" ] && [ "$theirs" != "$POD_IP:$REDIS_PORT" ]; then
                log "repair: telling $host that this node is now at $POD_IP:$REDIS_PORT"
                rcli "$ip" CLUSTER MEET "$POD_IP" "$REDIS_PORT" >/dev/null || true
            fi
        done
        # Done once every node this one knows is connected again and none is suspected
        # failing: right after a start nodes.conf's links read "connected" to addresses
        # that are gone (seen after a prod destroy and up: every peer at its old address,
        # "fail?", and the replicas syncing from masters that no longer existed).
        peers=$(rcli "$POD_IP" CLUSTER NODES | tr -d '\r' | awk '$3 !~ /myself/ && ($8 != "connected" || $3 ~ /fail/) { n++ } END { print n + 0 }')
        if [ "$peers" = 0 ]; then
            log "repair: every known peer is connected"
            return 0
        fi
        sleep 2
    done
    log "repair: gave up after ${HEAL_SECONDS}s; some peers are still unreachable"
}

# A replica whose link is down while the cluster knows its master at another address than
# the link's is pointed at that address again (CLUSTER REPLICATE of the same master).
# Redis re-points the link when the master itself tells the replica its new address, but
# not always when the address arrives otherwise: seen on the local cluster after a roll,
# a replica's CLUSTER NODES had its master's new address and INFO replication the old one,
# "Connecting to MASTER <old address>" for minutes, until the reconcile Job gave up.
follow_master() {
    local link master_id addr target
    while sleep "$FOLLOW_SECONDS"; do
        # (set -e is on: a server that does not answer just means the next round)
        link=$(info_field "$POD_IP" replication master_link_status) || continue
        [ "$link" = down ] || continue
        target=$(info_field "$POD_IP" replication master_host) || continue
        target="$target:$(info_field "$POD_IP" replication master_port)" || continue
        # this node's master and the address the cluster has for it
        read -r master_id addr < <(rcli "$POD_IP" CLUSTER NODES 2>/dev/null | tr -d '\r' | awk '
            $3 ~ /myself/ && $3 ~ /slave/ { id = $4 }
            { split($2, a, "@"); addr[$1] = a[1] }
            END { if (id != "" && id != "-") print id, addr[id] }') || continue
        if [ -n "$addr" ] && [ "$addr" != "$target" ] && [ "${addr%:*}" != "" ]; then
            log "replication: master $master_id is at $addr, the link still tries $target: following it there"
            rcli "$POD_IP" CLUSTER REPLICATE "$master_id" >/dev/null 2>&1 || true
        fi
    done
}

mkdir -p "$DATA"
peers=$(known_peers)
if [ "$peers" -gt 0 ]; then
    log "nodes.conf knows $peers peers; repairing their addresses once the server is up"
    heal_addresses "$peers" &
fi
follow_master &

# The password goes in on stdin ("-" as the last argument), quoted for redis.conf.
password=${REDISCLI_AUTH//\\/\\\\}
password=${password//\"/\\\"}
exec redis-server "$CONF" --port "$REDIS_PORT" --cluster-announce-ip "$POD_IP" --replica-announce-ip "$POD_IP" - < <(
    printf 'requirepass "%s"\nmasterauth "%s"\n' "$password" "$password"
)
