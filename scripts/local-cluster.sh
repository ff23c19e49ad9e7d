#!/usr/bin/env bash
# `kfp-operator local --cluster` with everything it needs, in one command (as root: it creates a network namespace):
# the demo of examples/cluster/ on a one-node cluster with real pods and the real Argo workflow-controller, the
# operator installed by its Helm chart from an image of the binary built here (docs/development.md, "The cluster
# tier"). Installs or builds, each step cached and idempotent:
#   containerd, runc, busybox-static     Debian's packages (apt-get, when missing)
#   kube-apiserver, etcd, kubelet, ...   Go modules (scripts/test-assets.sh, scripts/cluster/build-node-assets.sh)
#   helm                                 its Go module (scripts/helm.sh)
#   the compilers' Python environment    scripts/python-env.sh (the kfpsdk framework image takes the kfp SDK from it)
# Extra arguments go to `local --cluster`, e.g. `scripts/local-cluster.sh --once`.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ "$(id -u)" == 0 ]] || { echo "local-cluster.sh: error: run it as root (network namespace, mounts, cgroups)" >&2; exit 1; }
missing=()
for p in containerd:containerd runc:runc busybox-static:/bin/busybox; do
    command -v "${p#*:}" >/dev/null 2>&1 || [[ -x "${p#*:}" ]] || missing+=("${p%%:*}")
done
if ((${#missing[@]})); then
    echo "local-cluster.sh: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/test-assets.sh >/dev/null
bash scripts/cluster/build-node-assets.sh >/dev/null
HELM="$(bash scripts/helm.sh | tail -n 1)"
KFP_OPERATOR_VENV="$(bash scripts/python-env.sh | tail -n 1)"
export HELM KFP_OPERATOR_VENV
exec cargo run -p kfp-operator -- local --cluster "$@"
