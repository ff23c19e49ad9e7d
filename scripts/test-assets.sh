#!/usr/bin/env bash
# Fills the kfp-testenv assets folder with what integration tests need:
#   kube-apiserver  built with Go from the published k8s.io/kubernetes module
#   etcd            built with Go from the published go.etcd.io/etcd/server/v3 module
#   argo-crds/      Argo Workflows CRDs with full schemas, from the argo-workflows Go module
#
# Idempotent: anything already present is kept. The last line printed is the assets folder
# (usable as KUBEBUILDER_ASSETS). With KUBEBUILDER_ASSETS set, the binaries are only checked there.
#
# Environment:
#   KFP_TESTENV_CACHE   cache root (default: $HOME/.cache/kfp-testenv)
#   KUBEBUILDER_ASSETS  a folder that already holds kube-apiserver and etcd
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# The etcd release Kubernetes 1.35 is tested with (hack/lib/etcd.sh). Debian 12's etcd 3.4.23 is not enough:
# it lacks RequestWatchProgress, so kube-apiserver refuses streaming lists (sendInitialEvents) with a 500.
ETCD_VERSION=v3.6.6
# K8S_VERSION, STAGING_VERSION, ARGO_VERSION, find_go, module_dir, build_kubernetes_command, version_of.
source "$(dirname "$0")/lib/go-build.sh"

CACHE_ROOT="${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}"
ASSETS="${CACHE_ROOT}/${K8S_VERSION}"

log() { echo "test-assets: $*" >&2; }
die() { echo "test-assets: error: $*" >&2; exit 1; }

# Scratch space for generated modules; removed on exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-test-assets.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_etcd() {
    local dest="$1" mod_dir
    log "building etcd ${ETCD_VERSION} from go.etcd.io/etcd/server/v3"
    mod_dir="$WORK/etcd"
    mkdir -p "$mod_dir"
    # etcd's own go.mod points its sibling modules at ../api etc.: use the published ones.
    cat >"$mod_dir/go.mod" <<GOMOD
module kfp-testenv.invalid/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 ${ETCD_VERSION}
)
GOMOD
    (
        cd "$mod_dir"
        GOFLAGS=-mod=mod CGO_ENABLED=0 "$GOCMD" build -trimpath -ldflags "-s -w" -o "$dest.tmp" go.etcd.io/etcd/server/v3
    ) || die "building etcd failed (see above)"
    mv -f "$dest.tmp" "$dest"
}

fetch_argo_crds() {
    local dest="$1" dir
    log "copying Argo Workflows ${ARGO_VERSION} CRDs (full schemas)"
    dir="$(module_dir "github.com/argoproj/argo-workflows/v3@${ARGO_VERSION}")/manifests/base/crds/full"
    mkdir -p "$dest.tmp"
    for f in argoproj.io_workflows.yaml argoproj.io_workflowtemplates.yaml; do
        [[ -f "$dir/$f" ]] || die "$f is missing from $dir"
        cp "$dir/$f" "$dest.tmp/$f"
    done
    chmod -R u+w "$dest.tmp"
    echo "$ARGO_VERSION" >"$dest.tmp/VERSION"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
}

check_binaries() {
    local dir="$1" missing=()
    for b in kube-apiserver etcd; do
        [[ -x "$dir/$b" ]] || missing+=("$b")
    done
    if ((${#missing[@]})); then
        return 1
    fi
}

main() {
    if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
        check_binaries "$KUBEBUILDER_ASSETS" \
            || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS must hold executable kube-apiserver and etcd; unset it to build them into $ASSETS"
        if [[ ! -f "$KUBEBUILDER_ASSETS/argo-crds/argoproj.io_workflows.yaml" && ! -f "$ASSETS/argo-crds/argoproj.io_workflows.yaml" ]]; then
            GOCMD="$(find_go)"
            mkdir -p "$ASSETS"
            fetch_argo_crds "$ASSETS/argo-crds"
        fi
        case "$(version_of "$KUBEBUILDER_ASSETS/etcd" --version)" in
            "etcd Version: 3.4."*) log "warning: etcd 3.4 lacks RequestWatchProgress; kube-apiserver 1.35 then refuses streaming lists (use etcd >= 3.5.13)" ;;
        esac
        log "using KUBEBUILDER_ASSETS"
        echo "$KUBEBUILDER_ASSETS"
        return
    fi

    mkdir -p "$ASSETS"
    local need_etcd=1 need_apiserver=1 need_argo=1
    # Present and of the pinned version: keep. (A binary from an older version of this script is replaced.)
    [[ "$(version_of "$ASSETS/etcd" --version)" == "etcd Version: ${ETCD_VERSION#v}" ]] && need_etcd=0
    [[ "$(version_of "$ASSETS/kube-apiserver" --version)" == "Kubernetes ${K8S_VERSION}" ]] && need_apiserver=0
    [[ "$(cat "$ASSETS/argo-crds/VERSION" 2>/dev/null)" == "$ARGO_VERSION" ]] && need_argo=0
    if ((need_etcd + need_apiserver + need_argo)); then
        GOCMD="$(find_go)"
    fi
    ((need_etcd == 0)) || build_etcd "$ASSETS/etcd"
    ((need_apiserver == 0)) || build_kubernetes_command kube-apiserver "$ASSETS/kube-apiserver"
    ((need_argo == 0)) || fetch_argo_crds "$ASSETS/argo-crds"
    check_binaries "$ASSETS" || die "binaries missing in $ASSETS after building"
    log "assets ready"
    echo "$ASSETS"
}

main "$@"
