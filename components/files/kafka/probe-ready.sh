#!/usr/bin/env bash
# Readiness of a Kafka node (broker or controller): it answers a Kafka request on its own
# listener, PORT ($1). One ApiVersions v0 request goes to 127.0.0.1:PORT over bash's
# /dev/tcp and the reply must carry its correlation id and error code 0 within 4 s. So a
# node whose request handlers are stalled or overloaded is taken out of rotation, while
# the liveness probe (a TCP connect to the same port) leaves it running. No JVM is
# started: a `kafka-broker-api-versions.sh` every 10 s would cost more than the broker.
set -euo pipefail

port=${1:?usage: probe-ready.sh PORT}
exec 3<>"/dev/tcp/127.0.0.1/$port"
# size 15 | api_key 18 (ApiVersions) | api_version 0 | correlation_id 1 | client_id "probe"
printf '\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05probe' >&3
# The reply: size (4 bytes), correlation_id (4), error_code (2).
reply=$(timeout 4 od -An -tx1 -N10 <&3 | tr -d ' \n')
exec 3>&-
[ "${reply:8:12}" = "000000010000" ] || {
    echo "no ApiVersions reply from 127.0.0.1:$port (got '${reply}')" >&2
    exit 1
}
