#!/usr/bin/env bash
# Installs promtool, which tests/unit/test_monitoring.py runs on the rendered
# PrometheusRules (`promtool check rules`). It comes out of Debian's prometheus package
# (2.42 on bookworm): the .deb is downloaded with apt and only /usr/bin/promtool is
# extracted into the cache, so no Prometheus service is installed or started.
# Idempotent and fast when promtool is already there; run as root.
set -euo pipefail

CACHE="${AI_INFRA_CACHE:-$HOME/.cache/ai-infra-matrix}/promtool"
BIN="$CACHE/bin/promtool"

if [ -x "$BIN" ]; then
    "$BIN" --version 2>&1 | sed -n 1p
    exit 0
fi

mkdir -p "$CACHE/deb" "$CACHE/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$CACHE/deb"
if ! ls prometheus_*.deb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get download prometheus >/dev/null 2>&1; then
        apt-get update -qq
        apt-get download prometheus
    fi
fi
debs=(prometheus_*.deb)
dpkg-deb -x "${debs[0]}" "$work"
install -m 0755 "$work/usr/bin/promtool" "$BIN"
rm -f prometheus_*.deb  # 19 MB; the extracted binary is all the tests need
"$BIN" --version 2>&1 | sed -n 1p
