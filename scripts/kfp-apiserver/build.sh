#!/usr/bin/env bash
# Builds the real Kubeflow Pipelines API server and an S3 server for the kfp_apiserver test tier
# (crates/kfp-providers/tests/kfp/kfp_apiserver.rs, started by kfp_testenv::kfp_apiserver):
#   apiserver        KFP's v2 API server 2.0.5, package backend/src/apiserver of github.com/kubeflow/pipelines
#                    (cgo on: it links sqlite)
#   gofakes3         github.com/johannesboyne/gofakes3's command: the S3-compatible object store KFP keeps
#                    pipeline packages in (in place of MinIO)
#   scheduledworkflow-crd.yaml   the ScheduledWorkflow CRD of the same KFP version (recurring runs)
#   VERSION          the pins below, one per line: a folder of other pins is rebuilt
#
# The versions are pinned here and only here. Idempotent: a folder whose VERSION matches is kept, so a warm run
# builds nothing. The last line printed is the folder (what KFP_APISERVER_ASSETS points at).
#
# Environment:
#   KFP_TESTENV_CACHE      cache root (default: $HOME/.cache/kfp-testenv)
#   KFP_APISERVER_ASSETS   a folder that already holds the three files: only checked
#   GO                     the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# KFP 2.0.5 (the tag's commit; the module proxy serves it as a pseudo-version).
KFP_MODULE=github.com/kubeflow/pipelines
KFP_VERSION=v0.0.0-20231208180049-c5658f09ec38
KFP_RELEASE=2.0.5
GOFAKES3_VERSION=v1.2.0

# find_go, module_dir, version_of.
source "$(dirname "$0")/../lib/go-build.sh"

CACHE_ROOT="${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}"
# Not named after the version: the tests find it without knowing the pins (VERSION says which they are).
ASSETS="${CACHE_ROOT}/kfp-apiserver"
PINS="kfp ${KFP_RELEASE} ${KFP_MODULE}@${KFP_VERSION}
gofakes3 ${GOFAKES3_VERSION}"

log() { echo "kfp-apiserver: $*" >&2; }
die() { echo "kfp-apiserver: error: $*" >&2; exit 1; }

complete() {
    local f
    for f in apiserver gofakes3; do [[ -x "$1/$f" ]] || return 1; done
    [[ -f "$1/scheduledworkflow-crd.yaml" ]]
}

# KFP's go.mod replaces k8s.io/kubernetes and controller-tools; a module requiring it must repeat them.
build_apiserver() {
    local dest="$1" kfp_dir mod_dir="$WORK/apiserver" t0=$SECONDS
    log "building the KFP ${KFP_RELEASE} API server (cgo; takes a while on a cold Go cache)"
    kfp_dir="$(module_dir "${KFP_MODULE}@${KFP_VERSION}")"
    mkdir -p "$mod_dir"
    {
        echo "module kfp-testenv.invalid/kfp-apiserver"
        echo
        echo "go 1.21"
        echo
        echo "require ${KFP_MODULE} ${KFP_VERSION}"
        echo
        echo "replace ("
        sed -n '/^replace (/,/^)/{/=>/p}' "$kfp_dir/go.mod"
        echo ")"
    } >"$mod_dir/go.mod"
    grep -q 'k8s.io/kubernetes =>' "$mod_dir/go.mod" || die "found no replaces in $kfp_dir/go.mod"
    (
        cd "$mod_dir"
        GOFLAGS=-mod=mod CGO_ENABLED=1 nice -n 10 "$GOCMD" build -trimpath -ldflags "-s -w" \
            -o "$dest.tmp" "${KFP_MODULE}/backend/src/apiserver"
    ) || die "building the KFP API server failed (see above)"
    mv -f "$dest.tmp" "$dest"
    cp "$kfp_dir/manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml" \
        "$(dirname "$dest")/scheduledworkflow-crd.yaml"
    chmod u+w "$(dirname "$dest")/scheduledworkflow-crd.yaml"
    log "built the KFP API server in $((SECONDS - t0))s"
}

# gofakes3 built as its own main module (its go.mod's versions apply).
build_gofakes3() {
    local dest="$1" src="$WORK/gofakes3" t0=$SECONDS
    log "building gofakes3 ${GOFAKES3_VERSION}"
    cp -r "$(module_dir "github.com/johannesboyne/gofakes3@${GOFAKES3_VERSION}")" "$src"
    chmod -R u+w "$src"
    (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 "$GOCMD" build -trimpath -ldflags "-s -w" \
        -o "$dest.tmp" ./cmd/gofakes3) || die "building gofakes3 failed (see above)"
    mv -f "$dest.tmp" "$dest"
    log "built gofakes3 in $((SECONDS - t0))s"
}

main() {
    if [[ -n "${KFP_APISERVER_ASSETS:-}" ]]; then
        complete "$KFP_APISERVER_ASSETS" \
            || die "KFP_APISERVER_ASSETS=$KFP_APISERVER_ASSETS must hold apiserver, gofakes3 and scheduledworkflow-crd.yaml; unset it to build them into $ASSETS"
        echo "$KFP_APISERVER_ASSETS"
        return
    fi
    if [[ "$(cat "$ASSETS/VERSION" 2>/dev/null)" == "$PINS" ]] && complete "$ASSETS"; then
        echo "$ASSETS"
        return
    fi
    GOCMD="$(find_go)"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-apiserver-build.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$ASSETS"
    rm -f "$ASSETS/VERSION"
    build_apiserver "$ASSETS/apiserver"
    build_gofakes3 "$ASSETS/gofakes3"
    complete "$ASSETS" || die "files missing in $ASSETS after building"
    echo "$PINS" >"$ASSETS/VERSION"
    log "ready"
    echo "$ASSETS"
}

main "$@"
