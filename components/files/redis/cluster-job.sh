#!/bin/bash
# The bootstrap/reconcile Job of the Redis Cluster. Idempotent: every decision is made
# from slot ownership read from the nodes, never from cluster_state, and running it on a
# cluster that already matches the settings changes nothing.
#
#   cluster-job.sh preflight   before the StatefulSet changes: when the new node count
#                              removes pods, take them out of the cluster first (a
#                              master is failed over to a replica that stays, or its
#                              slots are moved away; then del-node). Removing a node
#                              that owns slots needs REDIS_DRAIN=yes.
#   cluster-job.sh reconcile   after: dev's single node takes all 16384 slots; empty
#                              nodes become M masters with R replicas each; new empty
#                              nodes join (as masters until M own slots, then as
#                              replicas of the master with the fewest); open slots are
#                              fixed; slots are rebalanced onto empty masters; surplus
#                              masters are drained (REDIS_DRAIN=yes) and made replicas.
#                              Succeeds only once all slots are covered, every node
#                              reports cluster_state:ok and every replica's link is up.
#
# Environment: REDISCLI_AUTH, REDIS_PORT, REDIS_NODE_HOST_TEMPLATE, REDIS_NODE_COUNT (N),
# REDIS_MASTER_COUNT (M), REDIS_REPLICAS_PER_MASTER (R), REDIS_DRAIN (yes|no),
# REDIS_WAIT_SECONDS (bound of every wait, 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

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
own_slots() { nodes_of "$1" | awk '$3 ~ /myself/' | slot_counts | awk '{ print $2 }'; }
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
    nodes_of "$SEED" | awk '$3 !~ /fail|handshake|noaddr/ && NF >= 8' | awk '{
        n = 0
        for (i = 9; i <= NF; i++) {
            if ($i ~ /^\[/) continue
            k = split($i, r, "-")
            n += (k == 2) ? r[2] - r[1] + 1 : 1
        }
        split($2, a, "@")
        role = ($3 ~ /master/) ? "master" : "slave"
        print $1, role, $4, n, a[1]
    }'
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
    printf '%s\n' "$out" | grep -q '\[OK\] All 16384 slots covered' || return 1
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

# --- preflight: take doomed nodes out before the StatefulSet shrinks ----------------

preflight() {
    local i ip seed="" view doomed="" id role slots members masters last blocked="" kept_ids kept_replica pass
    # A kept node that owns slots. A kept pod that exists (its name resolves) but does
    # not answer makes the decision unsafe: fail, and the Job retries.
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
    [ -z "$silent" ] || die "pods that exist do not answer PING:$silent; cannot tell what a shrink would remove"
    if [ -z "$seed" ]; then
        log "preflight: no kept node owns slots (first deploy, or scale-up only); nothing to remove"
        return 0
    fi
    SEED=$seed
    masters=$(topology | awk '$2 == "master" && $4 > 0' | wc -l)
    if [ "$masters" -gt "$M" ] && [ "$DRAIN" != yes ]; then
        die "the cluster has $masters masters owning slots but redisCluster.masterCount is $M." \
            "Lowering the master count needs redisCluster.drain.enabled=true (and" \
            "redisCluster.drain.fromMasterCount=$masters); nothing was changed."
    fi
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
        [ -n "$ip" ] && is_up "$ip" || continue
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
        [ "$role" = master ] && [ "${slots:-0}" -gt 0 ] || continue
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

wait_role() { # wait_role IP ROLE: up to 30 s
    local deadline=$(($(date +%s) + 30))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(info_field "$1" replication role)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}

# --- reconcile ---------------------------------------------------------------------

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
    masters=$(topology | awk '$2 == "master" && $4 > 0' | wc -l)
    if [ "$masters" -gt "$M" ]; then
        [ "$DRAIN" = yes ] || die "the cluster has $masters masters owning slots but redisCluster.masterCount is $M." \
            "Lowering the master count needs redisCluster.drain.enabled=true (and" \
            "redisCluster.drain.fromMasterCount=$masters); nothing was changed."
        surplus=$(topology | awk '$2 == "master" && $4 > 0 { print $1 }' | while read -r mid; do
            echo "${ORDINAL_OF_ID[$mid]:-999} $mid"
        done | sort -rn | head -n $((masters - M)) | awk '{ print $2 }')
        local weights=()
        for id in $surplus; do weights+=("$id=0"); done
        log "reconcile: draining surplus masters: $surplus"
        rebalance --cluster-weight "${weights[@]}"
        masters=$M
    fi

    # Empty masters in the cluster first become masters (up to M), the rest replicas.
    want=$((M - masters))
    for id in $(topology | awk '$2 == "master" && $4 == 0 { print $1 }' | while read -r mid; do
        echo "${ORDINAL_OF_ID[$mid]:-999} $mid"
    done | sort -n | awk '{ print $2 }'); do
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
    replicas_balanced || die "replicas are not spread $R per master: $(topology | awk '$2 == "slave" { print $1 "->" $3 }' | tr '\n' ' ')"
    masters=$(topology | awk '$2 == "master" && $4 > 0' | wc -l)
    [ "$masters" -eq "$M" ] || die "expected $M masters owning slots, found $masters"
    log "reconcile: cluster ok: $M masters with $R replicas each, all $SLOTS slots covered"
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

case ${1:-} in
preflight) preflight ;;
reconcile) reconcile ;;
*) die "usage: $0 preflight|reconcile" ;;
esac
