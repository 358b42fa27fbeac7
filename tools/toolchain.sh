#!/usr/bin/env bash
# Builds the Pulumi toolchain this project runs with, from Go modules, into a
# cache outside the repo (release binaries cannot be downloaded here):
#
#   pulumi                       CLI, github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
#   pulumi-language-python       Python language host (our own, tools/toolchain/pulumi/cmd/)
#   pulumi-language-python-exec  executor script, from the sdk/v3 module zip
#   pulumi-resource-pulumi-python  dynamic-provider launcher, from the sdk/v3 module zip
#   pulumi-resource-kubernetes   github.com/pulumi/pulumi-kubernetes/provider/v4
#   pulumi-resource-random       random provider (our own, tools/toolchain/pulumi/cmd/)
#
# Usage:
#   tools/toolchain.sh              ensure everything is built, with progress on stderr
#   tools/toolchain.sh --print-bin  same, then print only the bin dir on stdout
#   tools/toolchain.sh --print-env  same, then print `export ...` lines for eval
#
# Run pulumi with:  PATH=<bin>:$PATH PULUMI_SKIP_UPDATE_CHECK=true
#                   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# The engine takes plugins found on PATH at any version, so no `pulumi plugin
# install` is needed.
#
# Environment:
#   AI_INFRA_TOOLCHAIN_DIR      cache root (default ~/.cache/ai-infra-matrix/toolchain)
#   AI_INFRA_TOOLCHAIN_REBUILD  1 = rebuild all binaries even if present
#   AI_INFRA_ALLOW_K8S_MISMATCH 1 = accept a pulumi-kubernetes pin other than the
#                               provider version built here (not recommended)
set -euo pipefail
{ # the whole script is read before it runs, so editing it (git pull) mid-build is safe

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TEMPLATES=$HERE/toolchain

# ---------------------------------------------------------------- versions ---
# Python SDK pins come from requirements.txt; these defaults apply without it.
req_pin() { # req_pin NAME -> version pinned with NAME==X in requirements.txt
	local f=$REPO/requirements.txt pat=${1//-/[-_]}
	[[ -f $f ]] || return 0
	sed -nE "s/^[[:space:]]*${pat}[[:space:]]*==[[:space:]]*([0-9][0-9A-Za-z.+-]*).*/\1/Ip" "$f" | sed -n 1p
}
PULUMI_SDK_VERSION=$(req_pin pulumi);           PULUMI_SDK_VERSION=${PULUMI_SDK_VERSION:-3.272.0}
K8S_VERSION=$(req_pin pulumi-kubernetes);       K8S_VERSION=${K8S_VERSION:-4.25.0}
RANDOM_VERSION=$(req_pin pulumi-random);        RANDOM_VERSION=${RANDOM_VERSION:-4.21.4}

# What the Go module proxy serves (it refuses pkg/v3 v3.272.0 and v3.273.0, and
# every pulumi-kubernetes provider/v4 version but the v4.25.0 release commit).
# Must match tools/toolchain/pulumi/go.mod and tools/toolchain/kubernetes/go.mod.
PULUMI_CLI_VERSION=3.274.0                                   # >= the Python SDK pin
K8S_PROVIDER_VERSION=4.25.0                                  # root tag v4.25.0 = f47bc2d6f199
K8S_PROVIDER_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
SDK_MODULE=github.com/pulumi/pulumi/sdk/v3

# ------------------------------------------------------------------ helpers ---
MODE=build
case "${1:-}" in
	"") ;;
	--print-bin) MODE=print-bin ;;
	--print-env) MODE=print-env ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "toolchain: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

say() { echo "toolchain: $*" >&2; }
die() { echo "toolchain: ERROR: $*" >&2; exit 1; }
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | sed -n 1p)" == "$2" ]]; }
fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

finish() { # print what the caller asked for and exit
	local bin=$1
	case $MODE in
		print-bin) echo "$bin" ;;
		print-env)
			# shellcheck disable=SC2016 # $PATH is for the caller's shell to expand
			printf 'export PATH=%q:"$PATH"\n' "$bin"
			echo 'export PULUMI_SKIP_UPDATE_CHECK=true'
			echo 'export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true'
			;;
	esac
	exit 0
}

version_ge "$PULUMI_CLI_VERSION" "$PULUMI_SDK_VERSION" ||
	die "requirements.txt pins pulumi==$PULUMI_SDK_VERSION, newer than the CLI built here (v$PULUMI_CLI_VERSION); update PULUMI_CLI_VERSION and tools/toolchain/pulumi/go.mod"
if [[ $K8S_VERSION != "$K8S_PROVIDER_VERSION" ]]; then
	msg="requirements.txt pins pulumi-kubernetes==$K8S_VERSION, but the only provider version the Go module proxy serves is $K8S_PROVIDER_VERSION ($K8S_PROVIDER_MODULE@$K8S_PROVIDER_MODULE_VERSION); pin pulumi-kubernetes==$K8S_PROVIDER_VERSION"
	[[ ${AI_INFRA_ALLOW_K8S_MISMATCH:-} == 1 ]] || die "$msg (or set AI_INFRA_ALLOW_K8S_MISMATCH=1)"
	say "WARNING: $msg"
fi

BINARIES=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python
	pulumi-resource-kubernetes pulumi-resource-random)

ROOT=${AI_INFRA_TOOLCHAIN_DIR:-$HOME/.cache/ai-infra-matrix/toolchain}
DIR=$ROOT/pulumi-v${PULUMI_CLI_VERSION}_k8s-v${K8S_PROVIDER_VERSION}_random-v${RANDOM_VERSION}
BIN=$DIR/bin

# ------------------------------------------- use an installed toolchain ---
# (not our own cache dir: that one goes through the up-to-date checks below)
if [[ ${AI_INFRA_TOOLCHAIN_REBUILD:-} != 1 ]] && p=$(command -v pulumi 2>/dev/null) &&
	[[ $(dirname "$p") != "$BIN" && "$("$p" version 2>/dev/null)" == "v$PULUMI_CLI_VERSION" ]]; then
	ok=1
	for b in pulumi-language-python pulumi-resource-kubernetes pulumi-resource-random; do
		command -v "$b" >/dev/null 2>&1 || ok=0
	done
	[[ -f $(dirname "$p")/pulumi-language-python-exec ]] || ok=0
	if ((ok)); then
		say "using pulumi v$PULUMI_CLI_VERSION and plugins found on PATH ($(dirname "$p"))"
		finish "$(dirname "$p")"
	fi
fi

# ------------------------------------------------------------------ build ---
command -v go >/dev/null || die "go is not installed (need Go >= 1.26.6)"
command -v python3 >/dev/null || die "python3 is not installed"

mkdir -p "$BIN/.stamps" "$DIR/logs"

# One build at a time per cache entry (parallel make/test runs wait here).
exec 9>"$DIR/.lock"
if command -v flock >/dev/null; then
	flock -n 9 || { say "waiting for another toolchain build in $DIR ..."; flock 9; }
fi

TMP_FILES=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { ((${#TMP_FILES[@]})) && rm -rf "${TMP_FILES[@]}"; return 0; }
trap cleanup EXIT

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"

stamp_of() { # stamp_of FILE... ARGS -> hash of inputs that decide a binary
	{ cat "${@:1:$#-1}"; echo "${!#}"; go env GOVERSION; } | sha256sum | cut -d' ' -f1
}

up_to_date() { # up_to_date NAME STAMP
	[[ ${AI_INFRA_TOOLCHAIN_REBUILD:-} != 1 && -x $BIN/$1 && -f $BIN/.stamps/$1 &&
		"$(cat "$BIN/.stamps/$1")" == "$2" ]]
}

mod_dir() { # mod_dir MODULE@VERSION (run inside a work module) -> its dir in GOMODCACHE
	local json
	json=$(go mod download -json "$1" 2>&1) || die "go mod download $1 failed:
$json"
	python3 -c 'import json,sys; d=json.load(sys.stdin); e=d.get("Error"); print(d["Dir"]) if not e else sys.exit("error: "+e)' <<<"$json" ||
		die "go mod download $1 failed: $json"
}

fresh_workdir() { # fresh_workdir TEMPLATE -> copy of the template to build in
	local w
	w=$DIR/src/$(basename "$1")
	rm -rf "$w" && mkdir -p "$(dirname "$w")" && cp -R "$1" "$w"
	chmod -R u+w "$w"
	echo "$w"
}

go_build() { # go_build NAME WORKDIR MODULE@VERSION ESTIMATE PKG LDFLAGS [TAGS]
	local name=$1 work=$2 what=$3 estimate=$4 pkg=$5 ldflags=$6 tags=${7:-}
	local tmp=$BIN/.$name.tmp.$$ log=$DIR/logs/$name.log start=$SECONDS
	TMP_FILES+=("$tmp")
	say "building $name ($what; cold build takes ~$estimate) ..."
	if ! (cd "$work" && go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$tmp" "$pkg") >"$log" 2>&1; then
		echo "toolchain: ERROR: building $name failed ($what, package $pkg). go said:" >&2
		grep -v '^go: downloading' "$log" | tail -n 40 >&2
		echo "toolchain: full log: $log" >&2
		exit 1
	fi
	mv -f "$tmp" "$BIN/$name"
	say "built $name in $(fmt_secs $((SECONDS - start))) ($(du -h "$BIN/$name" | cut -f1))"
}

TOTAL_START=$SECONDS
BUILT=0

# --- pulumi CLI, language host and random provider: one wrapper module ---
PULUMI_TEMPLATE=$TEMPLATES/pulumi
PULUMI_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION"
# Our own language host and random provider say so in their version (semver build
# metadata), so `pulumi about` and a plugin list never pass them off as upstream's.
LANG_LDFLAGS="-s -w -X main.Version=$PULUMI_CLI_VERSION+ai-infra-matrix"
RANDOM_LDFLAGS="-s -w -X main.Version=$RANDOM_VERSION+ai-infra-matrix"
PULUMI_MODFILES=("$PULUMI_TEMPLATE/go.mod" "$PULUMI_TEMPLATE/go.sum")
S_CLI=$(stamp_of "${PULUMI_MODFILES[@]}" "$PULUMI_LDFLAGS")
S_LANG=$(stamp_of "${PULUMI_MODFILES[@]}" "$PULUMI_TEMPLATE/cmd/pulumi-language-python/main.go" "$LANG_LDFLAGS")
S_RAND=$(stamp_of "${PULUMI_MODFILES[@]}" "$PULUMI_TEMPLATE/cmd/pulumi-resource-random/main.go" "$RANDOM_LDFLAGS")
S_EXEC=$(stamp_of "${PULUMI_MODFILES[@]}" "exec-scripts")

if ! up_to_date pulumi "$S_CLI" || ! up_to_date pulumi-language-python "$S_LANG" ||
	! up_to_date pulumi-resource-random "$S_RAND" || ! up_to_date pulumi-language-python-exec "$S_EXEC"; then
	W=$(fresh_workdir "$PULUMI_TEMPLATE")
	TAGS=osusergo,grpcnotrace
	if ! up_to_date pulumi "$S_CLI"; then
		go_build pulumi "$W" "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION" "7 min" \
			github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$PULUMI_LDFLAGS" "$TAGS"
		echo "$S_CLI" >"$BIN/.stamps/pulumi"; BUILT=1
	fi
	if ! up_to_date pulumi-language-python "$S_LANG"; then
		go_build pulumi-language-python "$W" "tools/toolchain/pulumi with $SDK_MODULE@v$PULUMI_CLI_VERSION" \
			"1 min" ./cmd/pulumi-language-python "$LANG_LDFLAGS" "$TAGS"
		echo "$S_LANG" >"$BIN/.stamps/pulumi-language-python"; BUILT=1
	fi
	if ! up_to_date pulumi-resource-random "$S_RAND"; then
		go_build pulumi-resource-random "$W" "tools/toolchain/pulumi with $SDK_MODULE@v$PULUMI_CLI_VERSION" \
			"1 min" ./cmd/pulumi-resource-random "$RANDOM_LDFLAGS" "$TAGS"
		echo "$S_RAND" >"$BIN/.stamps/pulumi-resource-random"; BUILT=1
	fi
	if ! up_to_date pulumi-language-python-exec "$S_EXEC"; then
		SDK_DIR=$(cd "$W" && mod_dir "$SDK_MODULE@v$PULUMI_CLI_VERSION")
		for f in python/cmd/pulumi-language-python-exec python/dist/pulumi-resource-pulumi-python; do
			n=$(basename "$f")
			[[ -f $SDK_DIR/$f ]] || die "$SDK_MODULE@v$PULUMI_CLI_VERSION has no $f"
			cp "$SDK_DIR/$f" "$BIN/.$n.tmp.$$" && chmod 0755 "$BIN/.$n.tmp.$$"
			mv -f "$BIN/.$n.tmp.$$" "$BIN/$n"
		done
		say "copied pulumi-language-python-exec and pulumi-resource-pulumi-python from $SDK_MODULE@v$PULUMI_CLI_VERSION"
		echo "$S_EXEC" >"$BIN/.stamps/pulumi-language-python-exec"
	fi
fi

# --- kubernetes provider: wrapper module + generated embed files ---
K8S_TEMPLATE=$TEMPLATES/kubernetes
K8S_LDFLAGS="-s -w -X $K8S_PROVIDER_MODULE/pkg/version.Version=$K8S_PROVIDER_VERSION"
S_K8S=$(stamp_of "$K8S_TEMPLATE/go.mod" "$K8S_TEMPLATE/go.sum" "$K8S_TEMPLATE/main.go" "$K8S_LDFLAGS")
if ! up_to_date pulumi-resource-kubernetes "$S_K8S"; then
	W=$(fresh_workdir "$K8S_TEMPLATE")
	# schema-embed.json / terraform-mapping-embed.json are gitignored upstream and
	# so missing from the module zip: make them as the provider's generate.go does.
	K8S_DIR=$(cd "$W" && mod_dir "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_MODULE_VERSION")
	python3 - "$K8S_DIR/cmd/pulumi-resource-kubernetes" "$K8S_PROVIDER_VERSION" "$W" <<'PY' ||
import json, os, sys
src, version, out = sys.argv[1:]
with open(os.path.join(src, "schema.json")) as f:
    schema = json.load(f)
schema["version"] = version
with open(os.path.join(out, "schema-embed.json"), "w") as f:
    json.dump(schema, f, separators=(",", ":"))
with open(os.path.join(src, "terraform-mapping.json")) as f:
    mapping = json.load(f)
with open(os.path.join(out, "terraform-mapping-embed.json"), "w") as f:
    json.dump(mapping, f, separators=(",", ":"))
PY
		die "could not generate the kubernetes provider embed files from $K8S_DIR"
	go_build pulumi-resource-kubernetes "$W" "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_MODULE_VERSION = v$K8S_PROVIDER_VERSION" \
		"8 min" . "$K8S_LDFLAGS"
	echo "$S_K8S" >"$BIN/.stamps/pulumi-resource-kubernetes"; BUILT=1
fi

for b in "${BINARIES[@]}"; do
	[[ -x $BIN/$b ]] || die "$BIN/$b is missing after the build"
done
got=$("$BIN/pulumi" version 2>&1) || die "$BIN/pulumi does not run: $got"
[[ $got == "v$PULUMI_CLI_VERSION" ]] || die "$BIN/pulumi reports $got, expected v$PULUMI_CLI_VERSION"
rm -rf "$DIR/src"

if ((BUILT)); then
	say "toolchain ready in $(fmt_secs $((SECONDS - TOTAL_START))): $BIN"
else
	say "toolchain up to date: $BIN (pulumi v$PULUMI_CLI_VERSION, kubernetes v$K8S_PROVIDER_VERSION, random v$RANDOM_VERSION)"
fi
finish "$BIN"
}
