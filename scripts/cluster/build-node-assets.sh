#!/usr/bin/env bash
# Builds the extra binaries a local one-node cluster needs, next to test-assets.sh's kube-apiserver and etcd:
#   kubelet, kube-controller-manager, kube-scheduler, kubectl
#                        from the published k8s.io/kubernetes module, as test-assets.sh builds kube-apiserver
#   workflow-controller  from github.com/argoproj/argo-workflows/v3
#   argoexec             idem, from a patched writable copy of the module (see argo_module_copy)
#   fake-gcs-server      github.com/fsouza/fake-gcs-server: Argo's artifact repository (GCS driver), on loopback
# containerd, runc and busybox-static come from Debian (apt-get install containerd runc busybox-static).
#
# Idempotent: present binaries of the pinned version are kept. Prints the assets folder last.
#
# Environment:
#   KFP_TESTENV_CACHE   cache root (default: $HOME/.cache/kfp-testenv)
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# K8S_VERSION, STAGING_VERSION, ARGO_VERSION, find_go, module_dir, build_kubernetes_command, version_of: shared
# with test-assets.sh, so kubelet is built exactly as kube-apiserver is (and reuses its Go build cache).
source "$(dirname "$0")/../lib/go-build.sh"

CACHE_ROOT="${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}"
ASSETS="${CACHE_ROOT}/${K8S_VERSION}"

log() { echo "build-node-assets: $*" >&2; }
die() { echo "build-node-assets: error: $*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-node-assets.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

# A writable copy of the argo-workflows module. The module zip lacks workflow/executor/osspecific/signal_linux.go:
# in git it is a symlink to signal_darwin.go, and Go module zips drop symlinks. Without it argoexec does not compile
# on linux, so the copy gets the file back (same content: the file has no build constraint, its name selects linux),
# and the binaries are built inside the copy.
argo_module_copy() {
    local src dst="$WORK/argo-workflows"
    if [[ ! -d "$dst" ]]; then
        src="$(module_dir "github.com/argoproj/argo-workflows/v3@${ARGO_VERSION}")"
        cp -r "$src" "$dst"
        chmod -R u+w "$dst"
        local d="$dst/workflow/executor/osspecific"
        [[ -f "$d/signal_darwin.go" ]] || die "$d/signal_darwin.go missing"
        if [[ ! -f "$d/signal_linux.go" ]]; then
            cp "$d/signal_darwin.go" "$d/signal_linux.go"
        fi
    fi
    echo "$dst"
}

build_argo() {
    local cmd="$1" dest="$2" src
    log "building argo ${cmd} ${ARGO_VERSION}"
    src="$(argo_module_copy)"
    # Build inside the copy, as its main module: its go.mod's replaces and versions (the ones Argo tested with)
    # then apply, which they would not if a throwaway module required it.
    local pkg=github.com/argoproj/argo-workflows/v3
    local t0=$SECONDS
    (
        cd "$src"
        GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 "$GOCMD" build -trimpath \
            -ldflags "-s -w -X ${pkg}.version=${ARGO_VERSION} -X ${pkg}.gitTag=${ARGO_VERSION} -X ${pkg}.gitTreeState=clean" \
            -o "$dest.tmp" "./cmd/${cmd}"
    ) || die "building ${cmd} failed (see above)"
    mv -f "$dest.tmp" "$dest"
    log "built ${cmd} in $((SECONDS - t0))s"
}

# fake-gcs-server, built as its own main module (its go.mod's versions apply), like the Argo binaries.
build_fake_gcs() {
    local dest="$1" src t0=$SECONDS
    log "building fake-gcs-server ${FAKE_GCS_VERSION}"
    src="$WORK/fake-gcs-server"
    cp -r "$(module_dir "github.com/fsouza/fake-gcs-server@${FAKE_GCS_VERSION}")" "$src"
    chmod -R u+w "$src"
    (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 "$GOCMD" build -trimpath -ldflags "-s -w" -o "$dest.tmp" .) \
        || die "building fake-gcs-server failed (see above)"
    echo "$FAKE_GCS_VERSION" >"$dest.version"
    mv -f "$dest.tmp" "$dest"
    log "built fake-gcs-server in $((SECONDS - t0))s"
}

# All Argo CRDs (test-assets.sh copies only workflows and workflowtemplates): the real controller watches the others.
copy_argo_crds() {
    local dest="$1" dir
    dir="$(module_dir "github.com/argoproj/argo-workflows/v3@${ARGO_VERSION}")/manifests/base/crds"
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    # Minimal schemas (x-kubernetes-preserve-unknown-fields) for the six the operator never writes (the 8 full ones
    # took 15-16 s to establish, this set 10-12 s); full schemas where the operator's manifests should be validated.
    cp "$dir"/minimal/argoproj.io_*.yaml "$dest.tmp/"
    cp "$dir"/full/argoproj.io_workflows.yaml "$dir"/full/argoproj.io_workflowtemplates.yaml "$dest.tmp/"
    chmod -R u+w "$dest.tmp"
    echo "$ARGO_VERSION minimal+full" >"$dest.tmp/VERSION"
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

main() {
    mkdir -p "$ASSETS"
    GOCMD="$(find_go)"
    # kube-controller-manager (Deployments, ReplicaSets, Endpoints, garbage collection) and kube-scheduler: the chart
    # installs Deployments and the operator creates them for provider services.
    local k
    for k in kubelet kube-controller-manager kube-scheduler kubectl; do
        [[ "$(version_of "$ASSETS/$k" --version)" == "Kubernetes ${K8S_VERSION}" ]] || build_kubernetes_command "$k" "$ASSETS/$k"
    done
    [[ "$(version_of "$ASSETS/workflow-controller" version --short)" == *"${ARGO_VERSION}"* ]] \
        || build_argo workflow-controller "$ASSETS/workflow-controller"
    [[ "$(version_of "$ASSETS/argoexec" version --short)" == *"${ARGO_VERSION}"* ]] \
        || build_argo argoexec "$ASSETS/argoexec"
    [[ -x "$ASSETS/fake-gcs-server" && "$(cat "$ASSETS/fake-gcs-server.version" 2>/dev/null)" == "$FAKE_GCS_VERSION" ]] \
        || build_fake_gcs "$ASSETS/fake-gcs-server"
    [[ "$(cat "$ASSETS/argo-node-crds/VERSION" 2>/dev/null)" == "$ARGO_VERSION minimal+full" ]] || copy_argo_crds "$ASSETS/argo-node-crds"
    for t in containerd runc ctr; do
        command -v "$t" >/dev/null || log "warning: $t missing: apt-get install containerd runc"
    done
    [[ -x /bin/busybox ]] || log "warning: /bin/busybox missing: apt-get install busybox-static"
    log "node assets ready"
    echo "$ASSETS"
}

main "$@"
