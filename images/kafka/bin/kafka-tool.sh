#!/bin/bash
# The Kafka command-line tools (kafka-topics.sh, kafka-broker-api-versions.sh, ...):
# each is a symlink to this script, which runs the main class Apache Kafka 4.1's script of
# the same name runs, through kafka-run-class.sh (heap, KAFKA_OPTS, logging as upstream).
#
#   kafka-tool.sh --list   every command and its class, one per line (the image's build
#                          makes the links from it and checks each class is in the jars)
set -euo pipefail

commands() {
    cat <<'LIST'
kafka-acls.sh org.apache.kafka.tools.AclCommand
kafka-broker-api-versions.sh org.apache.kafka.tools.BrokerApiVersionsCommand
kafka-cluster.sh org.apache.kafka.tools.ClusterTool
kafka-configs.sh kafka.admin.ConfigCommand
kafka-console-consumer.sh org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-console-producer.sh org.apache.kafka.tools.ConsoleProducer
kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-consumer-perf-test.sh org.apache.kafka.tools.ConsumerPerformance
kafka-delete-records.sh org.apache.kafka.tools.DeleteRecordsCommand
kafka-dump-log.sh kafka.tools.DumpLogSegments
kafka-features.sh org.apache.kafka.tools.FeatureCommand
kafka-get-offsets.sh org.apache.kafka.tools.GetOffsetShell
kafka-leader-election.sh org.apache.kafka.tools.LeaderElectionCommand
kafka-log-dirs.sh org.apache.kafka.tools.LogDirsCommand
kafka-metadata-quorum.sh org.apache.kafka.tools.MetadataQuorumCommand
kafka-producer-perf-test.sh org.apache.kafka.tools.ProducerPerformance
kafka-reassign-partitions.sh org.apache.kafka.tools.reassign.ReassignPartitionsCommand
kafka-storage.sh kafka.tools.StorageTool
kafka-topics.sh org.apache.kafka.tools.TopicCommand
kafka-transactions.sh org.apache.kafka.tools.TransactionsCommand
LIST
}

name=$(basename "$0")
if [ "$name" = kafka-tool.sh ]; then
    if [ "${1:-}" = --list ]; then
        commands
        exit 0
    fi
    echo "USAGE: $0 --list (run the tools by their own names: kafka-topics.sh ...)" >&2
    exit 64
fi
class=$(commands | awk -v name="$name" '$1 == name { print $2 }')
if [ -z "$class" ]; then
    echo "$name: not a Kafka command of this image (see kafka-tool.sh --list)" >&2
    exit 64
fi
exec "$(dirname "$0")/kafka-run-class.sh" "$class" "$@"
