# Sourced (not run) by scripts/test-assets.sh, scripts/cluster/build-node-assets.sh and scripts/helm.sh: the pinned
# versions and the Go builds they need, so that kube-apiserver and kubelet are built the same way and share the Go
# build cache.
#
# The sourcing script defines `log` and `die`, sets WORK (a scratch folder it removes) before calling anything
# here, and sets GOCMD="$(find_go)" before module_dir or build_kubernetes_command.

K8S_VERSION=v1.35.4
# The k8s.io staging modules are published as v0.<minor>.<patch> alongside each Kubernetes release.
STAGING_VERSION=v0.35.4
ARGO_VERSION=v3.7.9
# The artifact repository of the local cluster's Argo (GCS API through STORAGE_EMULATOR_HOST).
FAKE_GCS_VERSION=v1.56.1

# find_go [HINT]: the go command; HINT is added to the message when there is none.
find_go() {
    if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    die "Go is needed to build the test binaries: install Go >= 1.25 or set GO=/path/to/go${1:+ $1}"
}

# go mod download -json MODULE@VERSION, printing the module's extracted folder.
module_dir() {
    local out dir
    out="$(cd "$WORK" && GOFLAGS=-mod=mod "$GOCMD" mod download -json "$1" 2>&1)" \
        || die "could not download Go module $1: $out"
    dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out" | head -n1)"
    [[ -n "$dir" && -d "$dir" ]] || die "go mod download $1 gave no module folder: $out"
    echo "$dir"
}

# build_kubernetes_command CMD DEST: builds k8s.io/kubernetes/cmd/CMD (kube-apiserver, kubelet) into DEST.
# k8s.io/kubernetes points every staging module at ./staging/..., which a module zip does not resolve; a throwaway
# module requiring it replaces each with its published v0.x version, the list read from upstream's own go.mod.
build_kubernetes_command() {
    local cmd="$1" dest="$2" gomod mod_dir="$WORK/$1"
    log "building ${cmd} ${K8S_VERSION} from k8s.io/kubernetes (takes a while on a cold Go cache)"
    mkdir -p "$mod_dir"
    gomod="$(module_dir "k8s.io/kubernetes@${K8S_VERSION}")/go.mod"
    {
        echo "module kfp-testenv.invalid/${cmd}"
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
    grep -q 'k8s.io/apiserver =>' "$mod_dir/go.mod" || die "found no staging replaces in $gomod"
    local pkg=k8s.io/component-base/version t0=$SECONDS
    (
        cd "$mod_dir"
        # CGO_ENABLED=0: both commands build and run without cgo on linux/amd64. nice: builds share 2 cores.
        GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 "$GOCMD" build -trimpath \
            -ldflags "-s -w -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=35 -X ${pkg}.gitTreeState=clean" \
            -o "$dest.tmp" "k8s.io/kubernetes/cmd/${cmd}"
    ) || die "building ${cmd} failed (see above)"
    mv -f "$dest.tmp" "$dest"
    log "built ${cmd} in $((SECONDS - t0))s"
}

# version_of BINARY ARGS...: the first line BINARY ARGS prints, empty when it is missing or fails.
version_of() {
    local out=""
    [[ -x "$1" ]] && out="$("$1" "${@:2}" 2>/dev/null)" || true
    echo "${out%%$'\n'*}"
}
