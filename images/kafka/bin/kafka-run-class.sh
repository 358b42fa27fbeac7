#!/bin/bash
# Runs one main class of the Kafka jars in /opt/kafka/libs: this image's own small
# stand-in for Apache Kafka's bin/kafka-run-class.sh, honouring the same environment
# for everything the pods, the guide's commands and their users set.
#
#   kafka-run-class.sh [-name NAME] [-loggc] CLASS [ARGS...]
#
#   -name NAME   the process's name in its GC log file (NAME-gc.log)
#   -loggc       write a rotating GC log into LOG_DIR (the server does)
#
# Environment, as in Apache Kafka's scripts:
#   KAFKA_HEAP_OPTS             heap flags (default -Xmx256M: a CLI tool; the server's
#                               comes from kafka-server-start.sh)
#   KAFKA_JVM_PERFORMANCE_OPTS  GC and JIT flags (default G1, as upstream)
#   KAFKA_GC_LOG_OPTS           with -loggc (default: 10 x 100 MB in LOG_DIR)
#   KAFKA_LOG4J_OPTS            logging (default: the tools' config, warnings to stderr)
#   LOG_DIR                     where logs go (default $KAFKA_HOME/logs); also kafka.logs.dir
#   KAFKA_JMX_OPTS, JMX_PORT    remote JMX, only when JMX_PORT is set (as upstream)
#   KAFKA_OPTS                  any further JVM options (e.g. a JAAS file)
#   KAFKA_HOME                  default: the directory above this script's
#   JAVA_HOME                   default: java on PATH
#   CLASSPATH                   put before the Kafka jars
# Options are split on whitespace (no quoting inside a variable), as upstream does.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${KAFKA_HOME:-$(dirname "$here")}
name=""
loggc=no
while [ $# -gt 0 ]; do
    case $1 in
    -name)
        name=$2
        shift 2
        ;;
    -loggc)
        loggc=yes
        shift
        ;;
    *) break ;;
    esac
done
if [ $# -lt 1 ]; then
    echo "USAGE: $0 [-name NAME] [-loggc] CLASS [ARGS...]" >&2
    exit 64
fi
class=$1
shift

log_dir=${LOG_DIR:-$home/logs}
java=java
[ -z "${JAVA_HOME:-}" ] || java=$JAVA_HOME/bin/java

read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xmx256M}"
read -r -a performance <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
read -r -a log4j <<<"${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$home/config/tools-log4j2.properties}"
read -r -a options <<<"${KAFKA_OPTS:-}"
gc=()
if [ "$loggc" = yes ]; then
    # The GC log is the only file this script writes: into LOG_DIR, a volume in the pods.
    mkdir -p "$log_dir"
    read -r -a gc <<<"${KAFKA_GC_LOG_OPTS:--Xlog:gc*:file=$log_dir/${name:-kafka}-gc.log:time,tags:filecount=10,filesize=100M}"
fi
jmx=()
if [ -n "${JMX_PORT:-}" ]; then
    read -r -a jmx <<<"${KAFKA_JMX_OPTS:--Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false}"
    jmx+=("-Dcom.sun.management.jmxremote.port=$JMX_PORT" "-Dcom.sun.management.jmxremote.rmi.port=$JMX_PORT")
fi
classpath="$home/libs/*"
[ -z "${CLASSPATH:-}" ] || classpath="$CLASSPATH:$classpath"

exec "$java" "${heap[@]}" "${performance[@]}" "${gc[@]}" "${jmx[@]}" "${log4j[@]}" "-Dkafka.logs.dir=$log_dir" \
    -cp "$classpath" "${options[@]}" "$class" "$@"
