#!/bin/bash
# The preflight Job of the Redis Cluster, run before the StatefulSet changes: when the
# new node count removes pods, take them out of the cluster first (a master is failed
# over to a replica that stays, or its slots are moved away; then del-node). Removing a
# node that owns slots needs REDIS_DRAIN=yes. Idempotent: with nothing to remove it
# changes nothing. Environment: see cluster-lib.sh.
set -euo pipefail
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

preflight() {
    local i ip seed="" view doomed="" id role slots members last blocked="" kept_ids kept_replica pass
    # A kept node that owns slots, to see the cluster from. A kept pod that does not
    # answer cannot be removed by this change, so it does not block it: that pod may be
    # exactly what the rollout after this Job repairs (a wrong image, say).
    local silent=""
    for i in $(seq 0 $((N - 1))); do
        ip=$(resolve "$(node_host "$i")")
        [ -n "$ip" ] || continue
        if ! is_up "$ip"; then
            silent="$silent $(node_host "$i")"
        elif [ -z "$seed" ] && [ "$(own_slots "$ip")" -gt 0 ]; then
            seed=$ip
        fi
    done
    [ -z "$silent" ] || log "preflight: kept pods that do not answer PING (the rollout may repair them):$silent"
    if [ -z "$seed" ]; then
        # Nothing kept owns slots: a first deploy, a scale-up, or every kept pod down.
        # Only a pod beyond the new count could be lost, and without a view it cannot be judged.
        [ -z "$(resolve "$(node_host "$N")")" ] ||
            die "no kept node answers with slots, but $(node_host "$N") exists: cannot tell what a shrink to $N would remove"
        log "preflight: no kept node owns slots (first deploy, or scale-up only); nothing to remove"
        return 0
    fi
    SEED=$seed
    refuse_master_count_drop "$(masters_owning_slots)"
    view=$(nodes_of "$SEED")
    members=$(printf '%s\n' "$view" | awk 'NF >= 8 { n++ } END { print n + 0 }')
    kept_ids=" "
    for i in $(seq 0 $((N - 1))); do
        ip=$(resolve "$(node_host "$i")")
        [ -n "$ip" ] && is_up "$ip" && kept_ids="$kept_ids$(myid_of "$ip") "
    done
    last=$((members + 2))
    for i in $(seq "$N" "$last"); do
        ip=$(resolve "$(node_host "$i")")
        [ -n "$ip" ] || continue
        if ! is_up "$ip"; then
            # a pod that never joined (say, a scale-up with a broken image) can simply go;
            # a member must leave the cluster first, and one that does not answer cannot
            printf '%s\n' "$view" | awk -v a="$ip:" 'index($2, a) == 1 { f = 1 } END { exit !f }' || continue
            die "$(node_host "$i") is beyond the new count of $N, a cluster member, and does not answer PING; cannot take it out"
        fi
        id=$(myid_of "$ip")
        case $kept_ids in *" $id "*) continue ;; esac
        printf '%s\n' "$view" | awk -v id="$id" '$1 == id { f = 1 } END { exit !f }' || continue
        doomed="$doomed $id"
    done
    if [ -z "$doomed" ]; then
        log "preflight: no cluster member is on an ordinal >= $N; nothing to remove"
        return 0
    fi
    log "preflight: members on ordinals >= $N, to be removed before the StatefulSet shrinks:$doomed"

    # A doomed master owning slots with no replica that stays can only go by moving its
    # slots, which needs the drain. Decided before anything changes, so a refusal leaves
    # the cluster as it was.
    for id in $doomed; do
        slots=$(topology | awk -v id="$id" '$1 == id && $2 == "master" { print $4 }')
        [ "${slots:-0}" -gt 0 ] || continue
        kept_replica=no
        for ip in $(topology | awk -v id="$id" '$2 == "slave" && $3 == id { split($5, a, ":"); print a[1] }'); do
            case $kept_ids in *" $(myid_of "$ip") "*) kept_replica=yes ;; esac
        done
        [ "$kept_replica" = yes ] || blocked="$blocked $id($slots slots)"
    done
    if [ -n "$blocked" ] && [ "$DRAIN" != yes ]; then
        die "lowering the node count to $N would delete masters that own slots:$blocked." \
            "Their keys would be lost. Set redisCluster.drain.enabled=true (and" \
            "redisCluster.drain.fromMasterCount to the current masterCount) to move the slots away first;" \
            "nothing was changed."
    fi
    fix_open_slots
    # 1. A doomed master with a replica that stays hands its slots over by failover:
    #    no data moves.
    for id in $doomed; do
        role=$(topology | awk -v id="$id" '$1 == id { print $2 }')
        slots=$(topology | awk -v id="$id" '$1 == id { print $4 }')
        if [ "$role" != master ] || [ "${slots:-0}" -eq 0 ]; then continue; fi
        for ip in $(topology | awk -v id="$id" '$2 == "slave" && $3 == id { split($5, a, ":"); print a[1] }'); do
            case $kept_ids in *" $(myid_of "$ip") "*) ;; *) continue ;; esac
            log "preflight: failing $id over to its replica $ip, which stays"
            rcli "$ip" CLUSTER FAILOVER >/dev/null || true
            wait_role "$ip" master || die "failover of $id to $ip did not complete"
            break
        done
    done
    sleep 2
    # 2. Doomed masters still owning slots: move the slots to the masters that stay.
    local weights=()
    blocked=""
    for id in $doomed; do
        slots=$(topology | awk -v id="$id" '$1 == id && $2 == "master" { print $4 }')
        if [ "${slots:-0}" -gt 0 ]; then
            blocked="$blocked $id"
            weights+=("$id=0")
        fi
    done
    if [ -n "$blocked" ]; then
        log "preflight: draining${blocked}"
        rebalance --cluster-weight "${weights[@]}"
        for id in $doomed; do
            slots=$(topology | awk -v id="$id" '$1 == id { print $4 }')
            [ "${slots:-0}" -eq 0 ] || die "node $id still owns $slots slots after the drain"
        done
    fi
    # 3. del-node: replicas first, then the (now empty) masters. redis-cli moves the
    #    replicas of a removed master to the master with the fewest replicas.
    for pass in slave master; do
        for id in $doomed; do
            role=$(topology | awk -v id="$id" '$1 == id { print $2 }')
            [ "$role" = "$pass" ] || continue
            log "preflight: removing $role $id from the cluster"
            rcluster --cluster del-node "$SEED:$REDIS_PORT" "$id" >&2 || die "del-node $id failed"
        done
    done
    log "preflight: done; the StatefulSet may shrink"
}

preflight
