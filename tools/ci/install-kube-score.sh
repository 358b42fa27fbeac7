#!/usr/bin/env bash
# kube-score, the second independent manifest linter of tests/manifest/test_kube_score.py:
# built from its Go module (no binary downloads here) into a cache outside the repo, keyed
# by version. Idempotent and instant when cached.
set -euo pipefail
VERSION=v1.20.0
dir=${AI_INFRA_TOOLS_DIR:-$HOME/.cache/ai-infra-matrix/tools}/kube-score-$VERSION
if [[ -x $dir/kube-score ]]; then
	echo "kube-score $VERSION: cached in $dir"
	exit 0
fi
echo "kube-score $VERSION: building from the Go module proxy into $dir"
mkdir -p "$dir"
GOBIN=$dir CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/zegl/kube-score/cmd/kube-score@$VERSION"
"$dir/kube-score" version
