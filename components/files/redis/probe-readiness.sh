#!/bin/bash
# Readiness: PONG, and cluster_state:ok once; after the first success only PONG is
# required (latched in a file on an emptyDir, so a new pod starts unlatched). Without
# the latch one failed shard would take every pod out of its Services. The reconcile
# Job does not wait for readiness, so this cannot deadlock the first deploy.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
ip=${POD_IP:-127.0.0.1}
latch=${REDIS_READY_LATCH:-/run/redis/ready-once}
reply=$(rcli "$ip" PING 2>&1 | head -n 1)
if [ "$reply" != "PONG" ]; then
    echo "redis did not answer PING: $reply"
    exit 1
fi
[ -e "$latch" ] && exit 0
state=$(info_field "$ip" cluster cluster_state)
if [ "$state" = ok ]; then
    touch "$latch" 2>/dev/null || true
    exit 0
fi
echo "cluster_state is ${state:-unknown}, not ok yet"
exit 1
