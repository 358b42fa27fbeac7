#!/usr/bin/env bash
# Run the real Pulumi engine for a stack: `make up|preview|destroy STACK=...` land here.
#
#   tools/stack.sh up|preview|destroy STACK [extra pulumi args...]
#   tools/stack.sh pulumi STACK <any pulumi command...>     (same environment, your command)
#
# What it sets up, so a fresh machine needs nothing by hand:
# - the Pulumi CLI and plugins from tools/toolchain.sh (built from Go modules and cached
#   outside the repo, or the `pulumi` already on PATH at the pinned version);
# - no plugin downloads and no update checks at run time;
# - the backend: $PULUMI_BACKEND_URL when you set it (Pulumi Cloud, S3, ...), else a local
#   file backend inside the project, .pulumi-state/backend (git-ignored);
# - the passphrase for the local backend: $PULUMI_CONFIG_PASSPHRASE or
#   $PULUMI_CONFIG_PASSPHRASE_FILE when you set one, else .pulumi-state/passphrase, made
#   once with 32 random characters (git-ignored; it decrypts the stack's secrets: keep it);
# - the stack: selected, or created on first use. With the local backend the engine reads
#   and writes a copy of the stack file, .pulumi-state/stacks/Pulumi.<stack>.yaml, brought
#   up to date from the tracked Pulumi.<stack>.yaml before every run: the passphrase's
#   encryptionsalt and `config set --secret` values belong to this machine's backend, so
#   they stay out of the work tree (with your own backend, the tracked file is the stack
#   file, as Pulumi has it, and its salt is meant to be committed);
# - the target: the cluster the stack's kubeconfig/context, $KUBECONFIG or ~/.kube/config
#   names, when it answers. When nothing names a cluster, the local one (tools/cluster,
#   `make cluster-up`): `up` starts it (NODES, default 1) and pushes the project's images
#   to its registry, and the stack gets the local target's defaults (its image registry,
#   the stand-in application images) under what the stack file says. Where the local
#   cluster cannot run (not Linux, not root) or with no reachable cluster at all, a dev
#   stack renders its manifests to rendered/pulumi-<stack>/ through the provider's
#   renderYamlToDirectory, and a prod stack stops (preview works);
#   ($AI_INFRA_STACK_FILE, when set, names a copy of it the engine uses instead);
# - confirmation: `up` and `destroy` of a stack whose profile is not dev show Pulumi's
#   preview and ask before they change anything, unless YES=1 (what CI sets).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

usage() {
	echo "usage: tools/stack.sh up|preview|destroy STACK [pulumi args...] | tools/stack.sh pulumi STACK <pulumi command...>" >&2
	exit 64
}
[[ $# -ge 2 ]] || usage
action=$1 stack=$2
shift 2
case $action in up | preview | destroy | pulumi) ;; *) usage ;; esac
[[ -f Pulumi.$stack.yaml ]] || {
	stacks=(Pulumi.*.yaml)
	stacks=("${stacks[@]#Pulumi.}")
	echo "stack: no Pulumi.$stack.yaml in $REPO (stacks: ${stacks[*]%.yaml})" >&2
	exit 64
}

PY=$REPO/.venv/bin/python
[[ -x $PY ]] || {
	echo "stack: $PY is missing; run 'make install' first" >&2
	exit 1
}

# --- toolchain ---------------------------------------------------------------------
if ! bin=$(bash tools/toolchain.sh --print-bin); then
	cat >&2 <<'EOF'
stack: the Pulumi CLI is not available and could not be built (see the toolchain output above).
       Either install Pulumi the usual way (https://www.pulumi.com/docs/install/) at the version
       pinned in requirements.txt, or make the Go module proxy reachable and run `make toolchain`.
EOF
	exit 1
fi
export PATH="$bin:$REPO/.venv/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true

# --- backend and passphrase ------------------------------------------------------------
state=$REPO/.pulumi-state
local_backend=
if [[ -z ${PULUMI_BACKEND_URL:-} ]]; then
	mkdir -p "$state/backend"
	export PULUMI_BACKEND_URL="file://$state/backend"
	local_backend=1
fi
if [[ $PULUMI_BACKEND_URL == file://* && -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
	if [[ ! -s $state/passphrase ]]; then
		mkdir -p "$state"
		(umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$state/passphrase")
		echo "stack: created $state/passphrase for the local backend's secrets (git-ignored; keep it)" >&2
	fi
	export PULUMI_CONFIG_PASSPHRASE_FILE=$state/passphrase
fi

# --- the local cluster, when nothing else names one -------------------------------------
local_cluster=
no_local_cluster=
# `source .cluster/env` (as the README's quick start does) exports the local cluster's own
# kubeconfig: that names the local cluster, not another one, so it keeps the local target's
# defaults (without them a prod up in that shell stopped at "imageRegistry is empty").
if [[ ${KUBECONFIG:-} == "$REPO/.cluster/kubeconfig" ]]; then
	unset KUBECONFIG
fi
if [[ -z ${AI_INFRA_RENDER_DIR:-} ]] && ! "$PY" tools/cluster_probe.py --stack "$stack" --configured 2>/dev/null; then
	if [[ $(uname -s) != Linux || $(id -u) != 0 ]]; then
		no_local_cluster="the local cluster needs Linux and root (this is $(uname -s), uid $(id -u))"
	elif [[ $action == up ]]; then
		echo "stack: nothing names a cluster; using the local one (tools/cluster, NODES=${NODES:-1})" >&2
		"$PY" -m tools.cluster up --nodes "${NODES:-1}" --at-least
		"$PY" -m tools.cluster images --push
		local_cluster=1
	elif [[ -f .cluster/kubeconfig ]]; then
		local_cluster=1 # preview and destroy use it when it runs; they never start it
	fi
	if [[ -n $local_cluster ]]; then
		export KUBECONFIG=$REPO/.cluster/kubeconfig
	fi
fi

# The stack file the engine uses, and the flags that point it there (local backend only).
config_flags=()
init_dir=$REPO
if [[ -n $local_backend ]]; then
	init_dir=$state/stacks
	local_stack_file=$init_dir/Pulumi.$stack.yaml
	"$PY" - "Pulumi.$stack.yaml" "$local_stack_file" "$local_cluster" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from settings.stack_file import sync_local_copy
from tools.cluster.stack_defaults import local_cluster_config
sync_local_copy(Path(sys.argv[1]), Path(sys.argv[2]), local_cluster_config() if sys.argv[3] else None)
EOF
	# `pulumi stack init` writes the new stack's salt beside the project file it finds.
	cp Pulumi.yaml "$init_dir/Pulumi.yaml"
	config_flags=(--config-file "$local_stack_file")
	# A copy of it made for one run (tests preview several config changes side by side,
	# each in a copy of its own, while the stack file stays as it is).
	if [[ -n ${AI_INFRA_STACK_FILE:-} ]]; then
		config_flags=(--config-file "$AI_INFRA_STACK_FILE")
	fi
fi

if ! pulumi stack select "$stack" >/dev/null 2>&1; then
	echo "stack: creating stack $stack on $PULUMI_BACKEND_URL" >&2
	(cd "$init_dir" && pulumi stack init "$stack" >/dev/null)
	# The engine remembers the selected stack per project directory: select it here too.
	pulumi stack select "$stack" >/dev/null
fi

# A stack recorded as deployed into an earlier local cluster (stopped since by
# `make cluster-down`, which takes its objects and volumes with it) would be planned as
# "unchanged" and then fail on objects that exist nowhere. The cluster's identity is its
# kube-system namespace's UID; when the stack last ran in another one, its state is
# refreshed from this cluster first, which drops what is gone.
cluster_marker=$state/local-cluster/$stack
cluster_uid=
if [[ -n $local_cluster && -n $local_backend && $action != pulumi ]]; then
	cluster_uid=$("$REPO/.cluster/bin/kubectl" get namespace kube-system -o 'jsonpath={.metadata.uid}' 2>/dev/null || true)
	if [[ -n $cluster_uid && $(cat "$cluster_marker" 2>/dev/null) != "$cluster_uid" ]] &&
		[[ $(pulumi stack export 2>/dev/null) == *'"type": "kubernetes:'* ]]; then
		echo "stack: the $stack stack's state names objects of an earlier local cluster; refreshing it from this one first" >&2
		pulumi refresh --yes --skip-preview "${config_flags[@]}" >&2
	fi
fi

if [[ $action == pulumi ]]; then
	# The commands that read or write stack config take the copy; others need no flag.
	case ${1:-} in config | up | preview | destroy | refresh | import) set -- "$1" "${config_flags[@]}" "${@:2}" ;; esac
	exec pulumi "$@"
fi

# --- target: cluster or render directory -------------------------------------------------
profile=$("$PY" - "$stack" <<'EOF'
import sys
sys.path.insert(0, ".")
from settings import default_profile
from settings.stack_file import stack_config
raw, _ = stack_config(sys.argv[1])
print(raw.get("profile") or default_profile(sys.argv[1]))
EOF
)
render_dir=
if ! why=$("$PY" tools/cluster_probe.py --stack "$stack" 2>&1); then
	if [[ $profile == dev ]]; then
		render_dir=$REPO/rendered/pulumi-$stack
		echo "stack: no reachable cluster (${no_local_cluster:+$no_local_cluster; }$why); the dev stack renders its manifests to $render_dir" >&2
		export AI_INFRA_RENDER_DIR=$render_dir
	elif [[ $action == up ]]; then
		cat >&2 <<EOF
stack: no reachable cluster for stack $stack ($why).
       A $profile stack never falls back to rendering files: point ai-infra-matrix:kubernetes.kubeconfig
       and kubernetes.context at the cluster (or set KUBECONFIG), then run make up STACK=$stack again.
       Without a cluster, 'make preview STACK=$stack' and 'make render STACK=$stack' still work.
EOF
		exit 2
	else
		echo "stack: no reachable cluster ($why); previewing against the unreachable cluster" >&2
	fi
else
	echo "stack: deploying to the cluster: $why" >&2
fi

# dev deploys straight away; any other profile shows Pulumi's preview and its question
# first, unless YES=1 says the plan was reviewed (CI, after `make preview`).
confirm=(--yes)
if [[ $profile != dev && ${YES:-} != 1 && $action != preview ]]; then
	if [[ ! -t 0 ]]; then
		echo "stack: make $action STACK=$stack asks before it changes a $profile stack, and there is no terminal to ask;" >&2
		echo "       review 'make preview STACK=$stack', then run make $action STACK=$stack YES=1" >&2
		exit 2
	fi
	confirm=()
fi

case $action in
up)
	pulumi up "${confirm[@]}" "${config_flags[@]}" "$@"
	if [[ -n $cluster_uid ]]; then
		mkdir -p "${cluster_marker%/*}"
		echo "$cluster_uid" >"$cluster_marker"
	fi
	;;
preview) pulumi preview "${config_flags[@]}" "$@" ;;
destroy)
	# The volumes stay, and so do the protected generators of what their data was written
	# with (credentials, the Kafka cluster ID, a prod quorum lock): a later up finds both.
	pulumi destroy --exclude-protected "${confirm[@]}" "${config_flags[@]}" "$@"
	;;
esac

if [[ -n $render_dir && $action == up ]]; then
	count=$(find "$render_dir" -name '*.yaml' | wc -l)
	echo "stack: $count manifests rendered by the Kubernetes provider in $render_dir" >&2
	echo "       (they contain Secrets in plaintext: treat the directory like a credential)" >&2
fi

if [[ -n $local_cluster && $action == up ]]; then
	namespace=$(pulumi stack output namespace 2>/dev/null || true)
	namespace=${namespace:-<namespace>}
	cat >&2 <<EOF2
stack: the $stack stack runs on the local cluster. To reach it:
       source .cluster/env
       kubectl get pods -n $namespace
       kubectl exec -it ai-infra-patroni-0 -n $namespace -- patronictl list
       make down    # removes the stack and keeps its volumes; make cluster-down stops the cluster
EOF2
fi
