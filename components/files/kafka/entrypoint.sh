#!/bin/bash
# Starts one node of the KRaft cluster (controller, broker or combined), the same way in
# a pod and in the conformance tests:
#   1. node.id from the StatefulSet ordinal of the pod name, plus KAFKA_NODE_ID_OFFSET
#      (brokers start at 100 so no broker id is ever a voter id);
#   2. the rendered server.properties with @NODE_ID@ and @ADVERTISED_HOST@ filled in,
#      written to a writable place (the root filesystem is read-only);
#   3. the storage formatted with the cluster's fixed ID only when log.dirs holds no
#      meta.properties; a directory of another cluster or node stops the start;
#   4. exec the server, so SIGTERM reaches Kafka and shutdown is controlled.
#
# Environment: CLUSTER_ID (from the <release>-kafka-kraft Secret), POD_NAME, and where
# the template has @ADVERTISED_HOST@, KAFKA_ADVERTISED_HOST. Optional: KAFKA_NODE_ID_OFFSET
# (0), KAFKA_CONFIG_TEMPLATE, KAFKA_CONFIG, KAFKA_HOME (/opt/kafka), KAFKA_SERVER_START,
# KAFKA_STORAGE_TOOL, KAFKA_SERVER_HEAP_OPTS (the server's heap; not KAFKA_HEAP_OPTS,
# which would also size every CLI tool run with kubectl exec).
set -euo pipefail

log() { echo "kafka-entrypoint: $*" >&2; }

template="${KAFKA_CONFIG_TEMPLATE:-/etc/kafka/rendered/server.properties}"
config="${KAFKA_CONFIG:-/tmp/kafka/server.properties}"
kafka_home="${KAFKA_HOME:-/opt/kafka}"
server_start="${KAFKA_SERVER_START:-$kafka_home/bin/kafka-server-start.sh}"
storage_tool="${KAFKA_STORAGE_TOOL:-$kafka_home/bin/kafka-storage.sh}"
cluster_id="${CLUSTER_ID:?CLUSTER_ID is not set; it comes from the <release>-kafka-kraft Secret}"

pod="${POD_NAME:-${HOSTNAME:-}}"
ordinal="${pod##*-}"
case "$ordinal" in
    '' | *[!0-9]*)
        log "cannot read a StatefulSet ordinal from the pod name '$pod'"
        exit 64
        ;;
esac
node_id=$((10#$ordinal + ${KAFKA_NODE_ID_OFFSET:-0}))

advertised_host="${KAFKA_ADVERTISED_HOST:-}"
if grep -q '@ADVERTISED_HOST@' "$template" && [ -z "$advertised_host" ]; then
    log "KAFKA_ADVERTISED_HOST is not set; a broker must advertise its own address"
    exit 64
fi

mkdir -p "$(dirname "$config")"
sed -e "s|@NODE_ID@|$node_id|g" -e "s|@ADVERTISED_HOST@|$advertised_host|g" "$template" >"$config.new"
mv "$config.new" "$config"

log_dir="$(sed -n 's/^log\.dirs=//p' "$config")"
case "$log_dir" in
    '' | *,*)
        log "log.dirs must name exactly one directory (got '$log_dir')"
        exit 64
        ;;
esac

meta="$log_dir/meta.properties"
if [ -f "$meta" ]; then
    formatted_cluster="$(sed -n 's/^cluster\.id=//p' "$meta")"
    formatted_node="$(sed -n 's/^node\.id=//p' "$meta")"
    if [ "$formatted_cluster" != "$cluster_id" ]; then
        log "refusing to start: $log_dir belongs to cluster '$formatted_cluster', not '$cluster_id'." \
            "The volume survived a cluster ID change; restore the ID (kafka.clusterId) instead of reformatting."
        exit 65
    fi
    if [ "$formatted_node" != "$node_id" ]; then
        log "refusing to start: $log_dir was formatted for node $formatted_node, this pod is node $node_id"
        exit 65
    fi
    log "node $node_id: $log_dir already formatted for cluster $cluster_id"
else
    log "node $node_id: formatting $log_dir for cluster $cluster_id"
    "$storage_tool" format --config "$config" --cluster-id "$cluster_id"
fi

if [ -n "${KAFKA_SERVER_HEAP_OPTS:-}" ]; then
    export KAFKA_HEAP_OPTS="$KAFKA_SERVER_HEAP_OPTS"
fi
log "node $node_id: starting $(sed -n 's/^process\.roles=//p' "$config")"
exec "$server_start" "$config"
