#!/bin/bash
# preStop: a master hands its slots to its most up-to-date replica before it stops.
# It sends CLUSTER FAILOVER (coordinated: the replica catches up, then takes over) to
# that replica and waits until this node reports role slave, so clients see about a
# second of redirects instead of a node timeout of refused writes. Replicas, masters
# without slots and masters without a healthy replica stop at once.
#
# Environment: POD_IP, REDISCLI_AUTH, REDIS_PORT, REDIS_FAILOVER_TIMEOUT (seconds, 20).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
ip=${POD_IP:-127.0.0.1}
timeout_s=${REDIS_FAILOVER_TIMEOUT:-20}

role=$(info_field "$ip" replication role)
[ "$role" = master ] || exit 0
myid=$(rcli "$ip" CLUSTER MYID | tr -d '\r')
mine=$(rcli "$ip" CLUSTER NODES | tr -d '\r' | parse_nodes | awk -v id="$myid" '$1 == id { print $4 }')
if [ "${mine:-0}" = 0 ]; then
    log "prestop: master without slots; nothing to hand over"
    exit 0
fi
# The replica with its link up and the highest replication offset, as each replica of
# this master reports it (addresses from CLUSTER NODES: the announced ones).
best=""
best_offset=-1
for address in $(rcli "$ip" CLUSTER NODES | tr -d '\r' |
    awk -v id="$myid" '$4 == id && $3 ~ /slave/ && $3 !~ /fail/ && $8 == "connected" { split($2, a, "@"); print a[1] }'); do
    replica_ip=${address%:*}
    replica_port=${address##*:}
    [ "$(REDIS_PORT=$replica_port info_field "$replica_ip" replication master_link_status)" = up ] || continue
    offset=$(REDIS_PORT=$replica_port info_field "$replica_ip" replication slave_repl_offset)
    if [ "${offset:-0}" -gt "$best_offset" ]; then
        best_offset=$offset
        best="$replica_ip $replica_port"
    fi
done
if [ -z "$best" ]; then
    log "prestop: master with ${mine} slots but no replica with its link up; stopping without failover"
    exit 0
fi
read -r replica_ip replica_port <<<"$best"
deadline=$(($(date +%s) + timeout_s))
log "prestop: handing ${mine} slots to replica $replica_ip:$replica_port"
while [ "$(date +%s)" -lt "$deadline" ]; do
    REDIS_PORT=$replica_port rcli "$replica_ip" CLUSTER FAILOVER >/dev/null 2>&1 || true
    # Poll for up to 5 s, then ask again (a failover attempt can time out).
    for _ in $(seq 1 50); do
        if [ "$(info_field "$ip" replication role)" = slave ]; then
            log "prestop: this node is a replica now"
            exit 0
        fi
        sleep 0.1
    done
done
log "prestop: no failover within ${timeout_s}s; stopping anyway"
exit 0
