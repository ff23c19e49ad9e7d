#!/usr/bin/env bash
# Gets the helm command the chart tests run (crates/kfp-operator/tests/chart*.rs): built with Go from the published
# helm.sh/helm/v3 module (cmd/helm), cached beside the other test assets, so no download of a prebuilt binary.
#
# Cold build measured on the 2-core machine: 219 s wall (module download and compile); 5 s with a warm Go build cache.
#
# Idempotent and quick once built: a cached binary of the pinned version is kept. The last line printed is the path
# of the helm binary (usable as HELM).
#
# Environment:
#   HELM                a helm binary to use instead (only checked: it must run `helm version`)
#   KFP_TESTENV_CACHE   cache root (default: $HOME/.cache/kfp-testenv)
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

HELM_VERSION=v3.22.0

CACHE_ROOT="${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}"
DEST="${CACHE_ROOT}/helm-${HELM_VERSION}/helm"

log() { echo "helm.sh: $*" >&2; }
die() { echo "helm.sh: error: $*" >&2; exit 1; }

# find_go, shared with test-assets.sh.
source "$(dirname "$0")/lib/go-build.sh"

# `helm version --template '{{.Version}}'`, empty when the binary is missing or fails.
version_of() {
    [[ -x "$1" ]] || return 0
    "$1" version --template '{{.Version}}' 2>/dev/null || true
}

build_helm() {
    local dest="$1" gocmd started
    gocmd="$(find_go "(or set HELM=/path/to/helm)")"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-helm.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    log "building helm ${HELM_VERSION} from helm.sh/helm/v3 (cmd/helm; about 3-4 minutes on a cold Go cache)"
    started=$SECONDS
    cat >"$WORK/go.mod" <<GOMOD
module kfp-testenv.invalid/helm

go 1.24.0

require helm.sh/helm/v3 ${HELM_VERSION}
GOMOD
    mkdir -p "$(dirname "$dest")"
    (
        cd "$WORK"
        # Helm reports its version from these variables (internal/version); without them `helm version` says v3.x-dev.
        GOFLAGS=-mod=mod CGO_ENABLED=0 "$gocmd" build -trimpath \
            -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
            -o "$dest.tmp" helm.sh/helm/v3/cmd/helm
    ) || die "building helm failed (see above)"
    mv -f "$dest.tmp" "$dest"
    log "built helm ${HELM_VERSION} in $((SECONDS - started))s"
}

main() {
    if [[ -n "${HELM:-}" ]]; then
        [[ -n "$(version_of "$HELM")" ]] || die "HELM=$HELM is not a working helm binary (\`$HELM version\` failed)"
        log "using HELM=$HELM ($(version_of "$HELM"))"
        echo "$HELM"
        return
    fi
    if [[ "$(version_of "$DEST")" != "$HELM_VERSION" ]]; then
        build_helm "$DEST"
    fi
    [[ "$(version_of "$DEST")" == "$HELM_VERSION" ]] \
        || die "$DEST does not report version ${HELM_VERSION} after building (it says '$(version_of "$DEST")')"
    echo "$DEST"
}

main "$@"
