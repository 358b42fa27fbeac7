#!/usr/bin/env bash
# Installs shellcheck, which `make lint` runs over every shell script a pod or a tool runs
# (Debian's package). Idempotent and instant when it is already there; run as root.
set -euo pipefail

if ! command -v shellcheck >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends shellcheck
fi
shellcheck --version | sed -n 2p
