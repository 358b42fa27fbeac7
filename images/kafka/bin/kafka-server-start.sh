#!/bin/bash
# Starts the Kafka server (kafka.Kafka) in the foreground, as the pods' entrypoint.sh
# does with `exec`, so SIGTERM reaches the JVM and shutdown is controlled.
#
#   kafka-server-start.sh server.properties [--override property=value]...
#
# Heap: KAFKA_SERVER_HEAP_OPTS (the pods' setting, so that CLI tools run with
# `kubectl exec` keep their own small heap), else KAFKA_HEAP_OPTS, else -Xmx1G -Xms1G
# (upstream's default). Logging: KAFKA_LOG4J_OPTS, else config/log4j2.properties (INFO to
# stdout, for `kubectl logs`). GC log: into LOG_DIR. Everything else: kafka-run-class.sh.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -daemon ]; then
    echo "USAGE: $0 server.properties [--override property=value]..." >&2
    echo "(no -daemon: in a container the server runs in the foreground)" >&2
    exit 64
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${KAFKA_HOME:-$(dirname "$here")}
export KAFKA_HEAP_OPTS="${KAFKA_SERVER_HEAP_OPTS:-${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}}"
export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$home/config/log4j2.properties}"
exec "$here/kafka-run-class.sh" -name kafkaServer -loggc kafka.Kafka "$@"
