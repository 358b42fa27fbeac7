#!/usr/bin/env bash
# actionlint, to check .github/workflows in CI: built from its Go module (no binary
# downloads here) into a cache outside the repo, keyed by version.
set -euo pipefail
VERSION=v1.7.12
dir=${AI_INFRA_TOOLS_DIR:-$HOME/.cache/ai-infra-matrix/tools}/actionlint-$VERSION
if [[ -x $dir/actionlint ]]; then
	echo "actionlint $VERSION: cached in $dir"
	exit 0
fi
echo "actionlint $VERSION: building from the Go module proxy into $dir"
mkdir -p "$dir"
GOBIN=$dir CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
"$dir/actionlint" --version | sed -n 1p
