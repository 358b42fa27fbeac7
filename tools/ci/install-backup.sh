#!/usr/bin/env bash
# Installs what the backup conformance test needs beyond PostgreSQL and Redis
# (tools/ci/install-postgres.sh, tools/ci/install-redis.sh): the AWS CLI v2 that
# components/files/backup/upload-s3.sh drives in the amazon/aws-cli image (Debian
# bookworm's awscli 2.9, the same major version), and moto's S3-compatible server from
# PyPI in a virtualenv, standing in for the bucket on 127.0.0.1. Idempotent and fast when
# everything is already there; run as root.
set -euo pipefail

MOTO_VERSION="5.2.5"
VENV="${AI_INFRA_MOTO_VENV:-$HOME/.cache/ai-infra-matrix/moto-$MOTO_VERSION}"

missing=()
[ -x /usr/bin/aws ] || missing+=(awscli)
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

/usr/bin/aws --version
"$VENV/bin/moto_server" --help >/dev/null && echo "moto_server $MOTO_VERSION"
