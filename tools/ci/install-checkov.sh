#!/usr/bin/env bash
# checkov, the independent manifest scanner of tests/manifest/test_checkov.py: installed
# from PyPI into its OWN virtualenv in a cache outside the repo (its dependency tree
# conflicts with the project's pins, so never into .venv), keyed by version. Idempotent
# and fast when cached; prints the path of the checkov executable on its last line.
set -euo pipefail
VERSION=3.3.30
dir=${AI_INFRA_TOOLS_DIR:-$HOME/.cache/ai-infra-matrix/tools}/checkov-$VERSION
bin=$dir/venv/bin/checkov
# Offline: no PyPI update check (checkov makes one on import unless told not to) and no
# platform mapping download. tests/manifest/test_checkov.py sets the same and passes
# --skip-download.
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
if [[ -x $bin && -f $dir/.complete ]]; then
	echo "checkov $VERSION: cached in $dir"
	echo "$bin"
	exit 0
fi
PYTHON=${CHECKOV_PYTHON:-$(command -v python3)}
echo "checkov $VERSION: installing from PyPI into $dir (with $("$PYTHON" --version))"
rm -rf "$dir"
mkdir -p "$dir"
"$PYTHON" -m venv "$dir/venv"
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$VERSION"
"$bin" --version
touch "$dir/.complete"
echo "$bin"
