#!/usr/bin/env bash
# SPIKE (issue 15, "a cluster in a box"): not yet used by any test.
#
# Builds the extra binaries a local one-node cluster needs, next to test-assets.sh's kube-apiserver and etcd:
#   kubelet              from the published k8s.io/kubernetes module (same throwaway module as kube-apiserver)
#   workflow-controller  from github.com/argoproj/argo-workflows/v3
#   argoexec             idem, from a patched writable copy of the module (see build_argoexec)
# containerd, runc and busybox-static come from Debian (apt-get install containerd runc busybox-static).
#
# Idempotent: present binaries of the pinned version are kept. Prints the assets folder last.
#
# Environment:
#   KFP_TESTENV_CACHE   cache root (default: $HOME/.cache/kfp-testenv)
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

K8S_VERSION=v1.35.4
STAGING_VERSION=v0.35.4
ARGO_VERSION=v3.7.9

CACHE_ROOT="${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}"
ASSETS="${CACHE_ROOT}/${K8S_VERSION}"

log() { echo "build-node-assets: $*" >&2; }
die() { echo "build-node-assets: error: $*" >&2; exit 1; }

find_go() {
    if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    die "Go is needed: install Go >= 1.25 or set GO=/path/to/go"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-node-assets.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

module_dir() {
    local out dir
    out="$(cd "$WORK" && GOFLAGS=-mod=mod "$GOCMD" mod download -json "$1" 2>&1)" \
        || die "could not download Go module $1: $out"
    dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out" | head -n1)"
    [[ -n "$dir" && -d "$dir" ]] || die "go mod download $1 gave no module folder: $out"
    echo "$dir"
}

# Same approach as test-assets.sh's kube-apiserver: a throwaway module requiring k8s.io/kubernetes with every
# staging module replaced by its published v0.x version, so the Go build cache is shared with kube-apiserver.
build_kubelet() {
    local dest="$1" gomod mod_dir
    log "building kubelet ${K8S_VERSION}"
    mod_dir="$WORK/kubelet"
    mkdir -p "$mod_dir"
    gomod="$(module_dir "k8s.io/kubernetes@${K8S_VERSION}")/go.mod"
    {
        echo "module kfp-testenv.invalid/kubelet"
        echo
        echo "go 1.25.0"
        echo
        echo "godebug default=go1.25"
        echo
        echo "require k8s.io/kubernetes ${K8S_VERSION}"
        echo
        echo "replace ("
        sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._/-]*\) => \./staging/.*$#\t\1 => \1 '"${STAGING_VERSION}"'#p' "$gomod"
        echo ")"
    } >"$mod_dir/go.mod"
    grep -q 'k8s.io/kubelet =>' "$mod_dir/go.mod" || die "found no staging replaces in $gomod"
    local pkg=k8s.io/component-base/version
    local t0=$SECONDS
    (
        cd "$mod_dir"
        # CGO_ENABLED=0 like kube-apiserver: kubelet builds and runs without cgo on linux/amd64.
        GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 "$GOCMD" build -trimpath \
            -ldflags "-s -w -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=35 -X ${pkg}.gitTreeState=clean" \
            -o "$dest.tmp" k8s.io/kubernetes/cmd/kubelet
    ) || die "building kubelet failed (see above)"
    mv -f "$dest.tmp" "$dest"
    log "built kubelet in $((SECONDS - t0))s"
}

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

version_of() {
    local out=""
    [[ -x "$1" ]] && out="$("$1" "${@:2}" 2>/dev/null)" || true
    echo "${out%%$'\n'*}"
}

main() {
    mkdir -p "$ASSETS"
    GOCMD="$(find_go)"
    [[ "$(version_of "$ASSETS/kubelet" --version)" == "Kubernetes ${K8S_VERSION}" ]] || build_kubelet "$ASSETS/kubelet"
    [[ "$(version_of "$ASSETS/workflow-controller" version --short)" == *"${ARGO_VERSION}"* ]] \
        || build_argo workflow-controller "$ASSETS/workflow-controller"
    [[ "$(version_of "$ASSETS/argoexec" version --short)" == *"${ARGO_VERSION}"* ]] \
        || build_argo argoexec "$ASSETS/argoexec"
    [[ "$(cat "$ASSETS/argo-node-crds/VERSION" 2>/dev/null)" == "$ARGO_VERSION minimal+full" ]] || copy_argo_crds "$ASSETS/argo-node-crds"
    for t in containerd runc ctr; do
        command -v "$t" >/dev/null || log "warning: $t missing: apt-get install containerd runc"
    done
    [[ -x /bin/busybox ]] || log "warning: /bin/busybox missing: apt-get install busybox-static"
    log "node assets ready"
    echo "$ASSETS"
}

main "$@"
