#!/bin/bash
# Liveness: the server answers. LOADING (a long AOF load) counts as alive; cluster
# state does not matter here (a failed shard elsewhere must not restart this pod).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
reply=$(rcli "${POD_IP:-127.0.0.1}" PING 2>&1 | head -n 1)
case $reply in
PONG | LOADING*) exit 0 ;;
*)
    echo "redis did not answer PING: $reply"
    exit 1
    ;;
esac
