#!/usr/bin/env bash
# The whole test suite, on a fresh clone and a fresh Debian machine. Installs or builds what the tests need, each
# step idempotent and cached:
#   nats-server            Debian's package (apt-get, when missing; the run-completion feed tests start one)
#   containerd, runc, busybox-static   Debian's packages, for the cluster tier (cluster_e2e; needs root)
#   kube-apiserver, etcd   built once from Go modules (scripts/test-assets.sh), cached in ~/.cache/kfp-testenv
#   kubelet, kube-controller-manager, kube-scheduler, kubectl, Argo workflow-controller and argoexec,
#   fake-gcs-server        built once from Go modules (scripts/cluster/build-node-assets.sh), cached there too
#   helm                   built once from its Go module (scripts/helm.sh), cached there too
#   mariadb-server         Debian's package (apt-get, when missing): the database of the real KFP API server tier
#   lua5.1                 Debian's package (apt-get, when missing): runs the Argo CD health check (config/argocd/)
#   KFP API server 2.0.5, gofakes3   built once from Go modules (scripts/kfp-apiserver/build.sh), cached there too
#                          (crates/kfp-providers/tests/kfp/kfp_apiserver.rs)
#   Python environment     the compilers' venv with the pinned kfp SDK (scripts/python-env.sh)
# then runs cargo test for the workspace. The output ends with cargo test's summary line.
#
# KFP_GO_COMPAT_DIR (optional): a folder with the Go KFP Operator's CRDs and documentation manifests (`go-crds/`,
# `go-doc-manifests/`). Those files are another project's and are not in this repository; the tests that read them
# are #[ignore]d and run here, with --ignored, only when the variable names such a folder (docs/development.md).
#
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p kfp-testenv -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: nats-server 2.9.x (the feed tests start a real NATS server); containerd 1.6, runc and
# busybox-static (the cluster tier's node: crates/kfp-operator/tests/cluster_e2e.rs); mariadb-server (the real KFP
# API server's database: crates/kfp-providers/tests/kfp/kfp_apiserver.rs; the package starts no server without systemd,
# and the test starts its own on loopback); lua5.1 (runs the Argo CD health check: tests/packaging/argocd_health.rs).
missing=()
if [[ -z "${NATS_SERVER:-}" ]] && ! command -v nats-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/nats-server ]]; then
    missing+=(nats-server)
fi
for p in containerd:containerd runc:runc busybox-static:/bin/busybox mariadb-server:/usr/sbin/mariadbd lua5.1:lua5.1; do
    command -v "${p#*:}" >/dev/null 2>&1 || [[ -x "${p#*:}" ]] || missing+=("${p%%:*}")
done
if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing ${missing[*]} with apt-get" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || { echo "test.sh: error: apt-get could not install ${missing[*]}" >&2; exit 1; }
    else
        echo "test.sh: error: ${missing[*]} needed (Debian: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

assets="$(bash scripts/test-assets.sh | tail -n 1)"
export KUBEBUILDER_ASSETS="$assets"
echo "test.sh: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
# The compilers' Python environment (kfp, pytest): the compiler tests and the kfpsdk local example run in it.
KFP_OPERATOR_VENV="$(bash scripts/python-env.sh | tail -n 1)"
export KFP_OPERATOR_VENV
echo "test.sh: KFP_OPERATOR_VENV=$KFP_OPERATOR_VENV" >&2
# The cluster tier's node: kubelet, kube-controller-manager, kube-scheduler, kubectl, Argo's workflow-controller
# and argoexec, fake-gcs-server, built once from Go modules into the same cache.
bash scripts/cluster/build-node-assets.sh >/dev/null
# The chart tests (crates/kfp-operator/tests/chart*.rs) run this helm.
HELM="$(bash scripts/helm.sh | tail -n 1)"
export HELM
echo "test.sh: HELM=$HELM" >&2
# The real KFP API server tier (crates/kfp-providers/tests/kfp/kfp_apiserver.rs): KFP 2.0.5 and its S3 server.
KFP_APISERVER_ASSETS="$(bash scripts/kfp-apiserver/build.sh | tail -n 1)"
export KFP_APISERVER_ASSETS
echo "test.sh: KFP_APISERVER_ASSETS=$KFP_APISERVER_ASSETS" >&2

# On CI (CI=true) the Go caches have done their work once every Go-built asset is in the cache folder: give their
# disk (GBs: the Kubernetes, Argo and KFP modules and builds) to the Rust build that follows. A CI run once failed
# with "No space left on device" (docs/development.md, "Disk").
if [[ "${CI:-}" == true ]] && command -v go >/dev/null 2>&1; then
    echo "test.sh: CI: freeing the Go build and module caches ($(du -sh "$(go env GOCACHE)" 2>/dev/null | cut -f1) + $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1))" >&2
    go clean -cache -modcache >/dev/null 2>&1 || echo "test.sh: warning: go clean failed (disk not freed)" >&2
fi

if [[ $# -gt 0 ]]; then
    exec cargo test "$@"
fi
# Doctests first: cargo closes merged doctests with a timing line, and the run should end with `test result:`.
cargo test --workspace --doc
# The tests held against the Go operator's own files, when they are here.
if [[ -n "${KFP_GO_COMPAT_DIR:-}" ]]; then
    [[ -d "$KFP_GO_COMPAT_DIR/go-crds" && -d "$KFP_GO_COMPAT_DIR/go-doc-manifests" ]] || {
        echo "test.sh: error: KFP_GO_COMPAT_DIR=$KFP_GO_COMPAT_DIR has no go-crds/ and go-doc-manifests/" >&2
        exit 1
    }
    echo "test.sh: KFP_GO_COMPAT_DIR=$KFP_GO_COMPAT_DIR: running the Go compatibility tests" >&2
    # --workspace: built with the same features as the run below, so it is built once.
    cargo test --workspace --test packaging go_compat_schemas -- --ignored
else
    echo "test.sh: KFP_GO_COMPAT_DIR is not set: the Go compatibility tests (go_compat_schemas) stay ignored" >&2
fi
exec cargo test --workspace --lib --bins --tests --examples --no-fail-fast
