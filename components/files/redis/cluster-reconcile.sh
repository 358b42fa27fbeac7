#!/bin/bash
# The reconcile Job of the Redis Cluster, run after the StatefulSet changes: dev's single
# node takes all 16384 slots; empty nodes become M masters with R replicas each; new empty
# nodes join (as masters until M own slots, then as replicas of the master with the
# fewest); open slots are fixed; slots are rebalanced onto empty masters; surplus masters
# are drained (REDIS_DRAIN=yes) and made replicas. Succeeds only once all slots are
# covered, every node reports cluster_state:ok and every replica's link is up; on a
# cluster that already matches the settings it changes nothing. Environment: see
# cluster-lib.sh.
set -euo pipefail
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

reconcile() {
    local i ip id members new_nodes=() all_empty=yes addrs=() masters surplus line want
    wait_for_nodes

    if ! find_seed; then
        # No node owns a slot: a new cluster. Every node must be empty.
        for i in $(seq 0 $((N - 1))); do
            ip=${ADDR[i]}
            [ "$(dbsize "$ip")" = 0 ] || die "no node owns slots but $(node_host "$i") holds keys; refusing to reset it"
            [ "$(known_count "$ip")" -le 1 ] || all_empty=no
        done
        if [ "$all_empty" = no ]; then
            log "reconcile: nodes know each other but none owns slots (an interrupted create); resetting them"
            for i in $(seq 0 $((N - 1))); do rcli "${ADDR[i]}" CLUSTER RESET HARD >/dev/null; done
            sleep 1
        fi
        if [ "$M" -ge 3 ]; then
            for i in $(seq 0 $((N - 1))); do addrs+=("${ADDR[i]}:$REDIS_PORT"); done
            log "reconcile: creating a cluster of $M masters with $R replicas each"
            rcluster --cluster create "${addrs[@]}" --cluster-replicas "$R" --cluster-yes >&2
        else
            log "reconcile: single master; $(node_host 0) takes all $SLOTS slots"
            rcli "${ADDR[0]}" CLUSTER ADDSLOTSRANGE 0 $((SLOTS - 1)) >/dev/null
        fi
        find_seed || die "no node owns slots after creating the cluster"
        # Every later decision reads roles from the seed's view: let gossip settle first.
        wait_converged
    fi

    fix_open_slots
    forget_gone_nodes

    # New nodes: kept nodes the cluster does not know yet.
    members=$(topology | awk '{ print $1 }')
    for i in $(seq 0 $((N - 1))); do
        ip=${ADDR[i]}
        id=$(myid_of "$ip")
        printf '%s\n' "$members" | grep -qx "$id" && continue
        [ "$(dbsize "$ip")" = 0 ] || die "$(node_host "$i") is not in the cluster and holds keys; refusing to join it"
        if [ "$(known_count "$ip")" -gt 1 ]; then
            log "reconcile: $(node_host "$i") knows another cluster but owns nothing; resetting it before it joins"
            rcli "$ip" CLUSTER RESET HARD >/dev/null
        fi
        new_nodes+=("$ip")
    done

    # Masters owning slots beyond M: draining one loses nothing, but only on request.
    masters=$(masters_owning_slots)
    refuse_master_count_drop "$masters"
    if [ "$masters" -gt "$M" ]; then
        surplus=$(topology | awk '$2 == "master" && $4 > 0 { print $1 }' | by_ordinal -r | head -n $((masters - M)))
        local weights=()
        for id in $surplus; do weights+=("$id=0"); done
        log "reconcile: draining surplus masters: $surplus"
        rebalance --cluster-weight "${weights[@]}"
        masters=$M
    fi

    # Empty masters in the cluster first become masters (up to M), the rest replicas.
    want=$((M - masters))
    for id in $(topology | awk '$2 == "master" && $4 == 0 { print $1 }' | by_ordinal); do
        if [ "$want" -gt 0 ]; then
            want=$((want - 1))
            continue
        fi
        ip=$(topology | awk -v id="$id" '$1 == id { split($5, a, ":"); print a[1] }')
        line=$(fewest_replicas_master)
        log "reconcile: empty master $id becomes a replica of $line"
        rcli "$ip" CLUSTER REPLICATE "$line" >/dev/null
        sleep 1
    done
    # New nodes: masters while fewer than M exist, then replicas.
    for ip in "${new_nodes[@]}"; do
        if [ "$want" -gt 0 ]; then
            want=$((want - 1))
            log "reconcile: adding $ip as a master"
            rcluster --cluster add-node "$ip:$REDIS_PORT" "$SEED:$REDIS_PORT" >&2
        else
            line=$(fewest_replicas_master)
            log "reconcile: adding $ip as a replica of $line"
            rcluster --cluster add-node "$ip:$REDIS_PORT" "$SEED:$REDIS_PORT" --cluster-slave --cluster-master-id "$line" >&2
        fi
        sleep 1
    done
    # Still short of masters (replicas were kept where masters were wanted): turn the
    # surplus replica of the master with the most replicas into a new empty master.
    while [ "$want" -gt 0 ]; do
        id=$(topology | awk '$2 == "slave" { c[$3]++; r[$3] = $1 " " $5 } END { for (m in c) print c[m], r[m] }' |
            sort -rn | awk 'NR == 1 && $1 > 1 { print $3 }')
        [ -n "$id" ] || die "the cluster needs $want more masters and has no spare replica"
        ip=${id%:*}
        log "reconcile: spare replica $ip becomes a new master"
        rcluster --cluster del-node "$SEED:$REDIS_PORT" "$(myid_of "$ip")" >&2
        sleep 1
        rcli "$ip" CLUSTER RESET HARD >/dev/null || true
        rcluster --cluster add-node "$ip:$REDIS_PORT" "$SEED:$REDIS_PORT" >&2
        want=$((want - 1))
    done

    sleep 1
    fix_open_slots
    rebalance --cluster-use-empty-masters

    # A REPLICATE reaches the seed's view by gossip, so one pass can act on a stale view:
    # balance until the converged cluster really has R replicas per master, else fail
    # (the Job retries) rather than report a spread that does not hold.
    for _ in 1 2 3; do
        balance_replicas
        wait_converged
        replicas_balanced && break
    done
    # Again at the end: a node stopped just before this Job is flagged failed only after
    # the cluster's node timeout, which may be after the first look.
    forget_gone_nodes
    replicas_balanced || die "replicas are not spread $R per master: $(topology | awk '$2 == "slave" { print $1 "->" $3 }' | tr '\n' ' ')"
    masters=$(masters_owning_slots)
    [ "$masters" -eq "$M" ] || die "expected $M masters owning slots, found $masters"
    log "reconcile: cluster ok: $M masters with $R replicas each, all $SLOTS slots covered"
}

# A node the cluster lists as failed that is none of the N pods and owns no slots is gone
# for good: every kept node forgets it. Seen on the local cluster after masterCount 6 -> 3:
# a replica the preflight Job had removed came back once more before the StatefulSet
# deleted its pod (its nodes.conf still knew the cluster) and gossip re-added it after the
# forget ban; every node then listed it as failed, at the old address, and every
# --cluster check tried to reach it. A failed node that is one of the pods (a lost node) or
# owns slots is never forgotten: wait_for_nodes has the ID of every pod.
forget_gone_nodes() {
    local id ip
    for id in $(nodes_of "$SEED" | parse_nodes | awk '$6 ~ /fail/ && $6 !~ /myself/ && $4 == 0 { print $1 }'); do
        [ -z "${ORDINAL_OF_ID[$id]:-}" ] || continue
        log "reconcile: forgetting $id: failed, owns no slots and is none of the $N pods"
        for ip in "${ADDR[@]}"; do rcli "$ip" CLUSTER FORGET "$id" >/dev/null 2>&1 || true; done
    done
}

# Every master owning slots has exactly R replicas, and no replica follows a master
# without slots.
replicas_balanced() {
    topology | awk -v R="$R" '
        $2 == "master" && $4 > 0 { count[$1] += 0 }
        $2 == "slave" { count[$3]++ }
        END { for (m in count) if (count[m] != R) exit 1 }'
}

# Every master owning slots gets R replicas: a replica of a master that has too many,
# or of a master without slots, moves to the master with the fewest.
balance_replicas() {
    local id ip target line
    [ "$R" -gt 0 ] || return 0
    for _ in $(seq 1 "$N"); do
        line=$(topology | awk -v R="$R" '
            $2 == "master" && $4 > 0 { owner[$1] = 1; count[$1] += 0 }
            $2 == "slave" { count[$3]++; rep[$3] = $1 " " $5 }
            END {
                for (m in rep) if (!(m in owner) || count[m] > R) { print rep[m]; exit }
            }')
        [ -n "$line" ] || return 0
        target=$(fewest_replicas_master)
        id=${line%% *}
        ip=${line#* }
        ip=${ip%:*}
        local current
        current=$(topology | awk -v id="$id" '$1 == id { print $3 }')
        [ "$current" != "$target" ] || return 0
        log "reconcile: replica $id moves to master $target"
        rcli "$ip" CLUSTER REPLICATE "$target" >/dev/null || true
        sleep 2
    done
}

reconcile
