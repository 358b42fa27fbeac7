#!/usr/bin/env bash
# Installs what the Kafka conformance tests run: Java 17, Maven, the Apache Kafka jars
# (the version of tools/ci/kafka-pom.xml, the same as the pinned apache/kafka image)
# copied from Maven Central into a cache outside the repo, and the Python Kafka client.
# Idempotent and fast when everything is already there; run as root.
#
#   KAFKA_LIBS (printed last) is the directory the tests put on the Java classpath:
#   $HOME/.cache/ai-infra-matrix/kafka/<version>/libs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
POM="$ROOT/tools/ci/kafka-pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LIBS="$HOME/.cache/ai-infra-matrix/kafka/$VERSION/libs"
# The marker names the pom's hash: a changed pom re-copies the jars.
MARKER="$LIBS/.complete-$(sha256sum "$POM" | cut -c1-16)"

missing=()
if ! java -version 2>&1 | grep -E 'version "(1[7-9]|2[0-9])' >/dev/null; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$MARKER" ]; then
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    mvn -B -q -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$LIBS" -DincludeScope=runtime -Dmdep.overWriteReleases=true
    ls "$LIBS"/kafka_2.13-"$VERSION".jar >/dev/null
    touch "$MARKER"
fi

if ! "$PYTHON" -c 'import confluent_kafka' >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "$(grep -E '^confluent-kafka==' "$ROOT/requirements-dev.txt")"
fi

java -version 2>&1 | sed -n 1p
echo "kafka $VERSION jars: $LIBS ($(find "$LIBS" -mindepth 1 -maxdepth 1 | wc -l) files)"
"$PYTHON" -c 'import confluent_kafka; print("confluent-kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0])'
