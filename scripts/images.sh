#!/usr/bin/env bash
# Builds the project's container images without Docker or a registry: one OCI image-layout tar per image
# (scripts/oci-image.py), reproducible (same inputs, same digests).
#
#   scripts/images.sh [--out DIR] [IMAGE ...]     IMAGE: operator stub-provider stub-compiler tools argoexec
#                                                 kfpsdk-compiler example-pipelines (default: all)
#
#   operator       $REGISTRY/kfp-operator-controller:$VERSION: the release binary as the Dockerfile's image runs it
#                  (same path, user, entrypoint); serves `run` and `provider-service` alike
#   stub-provider  $REGISTRY/kfp-operator-stub-provider:$VERSION: the same binary, command `provider-service` with
#                  PROVIDER_TYPE=stub: a Provider's serviceImage for the stub provider (no backend needed)
#   stub-compiler  $REGISTRY/kfp-operator-stub-compiler:$VERSION: framework image of `stub` (/compiler, /entrypoint.sh)
#   tools          $REGISTRY/kfp-operator-tools:$VERSION: curl, jq and a busybox shell for the WorkflowTemplates' steps
#   argoexec       $REGISTRY/argoexec:$ARGO_VERSION: Argo's executor, as scripts/cluster/build-node-assets.sh builds it
#   kfpsdk-compiler  $REGISTRY/kfp-operator-kfpsdk-compiler:$VERSION: framework image of `kfpsdk`, as
#                  compilers/kfpsdk/Dockerfile lays it out (the compiler and the pinned kfp SDK in /compiler), the SDK
#                  taken from the compilers' virtualenv (scripts/python-env.sh) instead of a pip install
#   example-pipelines  $REGISTRY/kfp-operator-example-pipelines:$VERSION: a pipeline image: this machine's Python
#                  3.11 with examples/pipelines on its PYTHONPATH (what `kfpsdk` Pipelines of the examples name)
#
# The names are the chart's (<containerRegistry>/kfp-operator-controller:<appVersion>), so the chart's defaults run
# the loaded images. Each lands in DIR/<repository>.tar (default DIR: target/images). Load with
# `ctr -n k8s.io image import DIR/kfp-operator-controller.tar`, or push with `skopeo copy
# oci-archive:DIR/kfp-operator-controller.tar docker://registry.example.com/kfp-operator-controller:0.1.0`
# (docs/installation.md). Prints the output folder last.
#
# The images take their shared libraries, busybox, curl, jq and CA certificates from this machine (Debian 12:
# apt-get install busybox-static curl jq ca-certificates), as the Dockerfile's distroless base is Debian 12's.
#
# Environment:
#   KFP_IMAGES_REGISTRY  the name prefix (default kfp-operator.local, the chart's default containerRegistry)
#   KFP_TESTENV_CACHE    where build-node-assets.sh put argoexec (default: $HOME/.cache/kfp-testenv)
#   CARGO_TARGET_DIR     cargo's target folder (default: target/)
#   KFP_OPERATOR_BINARY  pack this kfp-operator binary instead of building the release one (the cluster tests pack
#                        the binary cargo test built, so they need no second, release build)
#   KFP_OPERATOR_VENV    the compilers' virtualenv (default: $HOME/.cache/kfp-operator/venv; scripts/python-env.sh)
#   KFP_IMAGES_GZIP      0: leave layers uncompressed (faster to write and import; the tests' choice). Default 1.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/lib/go-build.sh" # ARGO_VERSION, K8S_VERSION
REGISTRY="${KFP_IMAGES_REGISTRY:-kfp-operator.local}"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ARGOEXEC="${KFP_NODE_ASSETS:-${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}/${K8S_VERSION}}/argoexec"
OUT="$ROOT/target/images"
ALL=(operator stub-provider stub-compiler tools argoexec kfpsdk-compiler example-pipelines)
GZIP=(--gzip)
[[ "${KFP_IMAGES_GZIP:-1}" != 0 ]] || GZIP=()

log() { echo "images: $*" >&2; }
die() { echo "images: error: $*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kfp-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# SRC:DEST arguments for the shared libraries `ldd` lists for the given binaries (a static one has none), at the
# paths the dynamic loader looks them up (Debian's multiarch folders are in its built-in search path).
libraries() {
    local b
    for b in "$@"; do
        ldd "$b" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' || true
    done | sort -u | while read -r lib; do echo "$lib:$lib"; done
}

# /etc files every image gets: users (root, distroless' nonroot 65532, the WorkflowTemplates' 1000), host lookups
# in /etc/hosts first (pods' hostAliases), and the CA bundle (HTTPS to Vertex AI, provider services, registries).
etc_files() {
    local etc="$WORK/etc"
    if [[ ! -d "$etc" ]]; then
        mkdir -p "$etc"
        printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
            'kfp:x:1000:1000:kfp:/tmp:/sbin/nologin' >"$etc/passwd"
        printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' 'kfp:x:1000:' >"$etc/group"
        printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$etc/nsswitch.conf"
        chmod 0644 "$etc"/*
    fi
    local certs=/etc/ssl/certs/ca-certificates.crt
    [[ -f "$certs" ]] || die "$certs missing: apt-get install ca-certificates"
    echo "$etc/passwd:/etc/passwd" "$etc/group:/etc/group" "$etc/nsswitch.conf:/etc/nsswitch.conf" "$certs:$certs"
}

# --link arguments for busybox-static at /bin/busybox with every applet beside it (sh, cp, mkdir, cat, ...).
busybox_files() {
    [[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null || die "/bin/busybox missing: apt-get install busybox-static"
    ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is not static: apt-get install busybox-static"
    echo /bin/busybox:/bin/busybox
    local a
    for a in $(/bin/busybox --list); do
        [[ "$a" == busybox ]] || echo "--link" "/bin/busybox:/bin/$a"
    done
}

image() { # name args...: writes $OUT/<repository>.tar
    local name="$1" t0=$SECONDS file
    shift
    file="${name%:*}"
    file="${file##*/}"
    python3 "$ROOT/scripts/oci-image.py" "$OUT/$file.tar" "$name" "${GZIP[@]}" \
        --label org.opencontainers.image.version="${name##*:}" "$@" >/dev/null
    log "$name: $OUT/$file.tar ($(du -k "$OUT/$file.tar" | cut -f1) KiB, $((SECONDS - t0))s)"
}

# The binary both operator images hold: KFP_OPERATOR_BINARY, or the release build (the Dockerfile's: the locked
# dependency graph, release profile; up to date, a second or two).
operator_binary() {
    if [[ -n "${KFP_OPERATOR_BINARY:-}" ]]; then
        [[ -x "$KFP_OPERATOR_BINARY" ]] || die "KFP_OPERATOR_BINARY=$KFP_OPERATOR_BINARY is not an executable"
        echo "$KFP_OPERATOR_BINARY"
        return
    fi
    local t0=$SECONDS
    (cd "$ROOT" && nice -n 10 cargo build --release --locked -p kfp-operator --bin kfp-operator) >&2 \
        || die "cargo build --release failed (see above)"
    log "release binary ready after $((SECONDS - t0))s"
    echo "$TARGET/release/kfp-operator"
}

# operator_image NAME ARGS...: the binary at /kfp-operator with its shared libraries and /etc files, user and
# entrypoint as in the Dockerfile; ARGS add the command, ports and labels.
operator_image() {
    local name="$1" bin libs etc
    shift
    bin="$(operator_binary)"
    libs="$(libraries "$bin")"
    etc="$(etc_files)"
    # shellcheck disable=SC2086 # word splitting of the SRC:DEST lists is intended (no spaces in them)
    image "$name" "$bin:/kfp-operator" $libs $etc --user 65532:65532 --entrypoint '["/kfp-operator"]' "$@"
}

# Command and ports as in the Dockerfile (the chart runs it with `run --config ...`).
build_operator() {
    operator_image "$REGISTRY/kfp-operator-controller:$VERSION" --cmd '["run"]' \
        --port 8080 --port 8081 --port 8082 --port 9443 \
        --label org.opencontainers.image.title=kfp-operator \
        --label "org.opencontainers.image.description=Kubernetes operator for ML pipelines (Kubeflow Pipelines, Vertex AI)" \
        --label org.opencontainers.image.licenses=Apache-2.0
}

# The stub provider's service: the operator image started as `provider-service` (docs/provider-service.md; ports
# from SERVER_PORT/METRICS_PORT, which the Provider's Deployment sets).
build_stub_provider() {
    operator_image "$REGISTRY/kfp-operator-stub-provider:$VERSION" --cmd '["provider-service"]' \
        --env PROVIDER_TYPE=stub --port 8080 --port 8081 --label org.opencontainers.image.title=kfp-operator-stub-provider
}

# The framework image contract (compilers/README.md): /compiler holds compile.sh, `/entrypoint.sh <dir>` copies it
# into the shared folder. The stub's compile.sh is a sh script with no Python package, so assemble.sh (which lays out
# the Python frameworks) is not needed; user and entrypoint as compilers/kfpsdk/Dockerfile.
build_stub_compiler() {
    local busybox etc
    busybox="$(busybox_files)"
    etc="$(etc_files)"
    # shellcheck disable=SC2086
    image "$REGISTRY/kfp-operator-stub-compiler:$VERSION" \
        "$ROOT/compilers/stub/compile.sh:/compiler/compile.sh" "$ROOT/compilers/shim/entrypoint.sh:/entrypoint.sh" \
        $busybox $etc --user 1000 --entrypoint '["/entrypoint.sh"]' \
        --label org.opencontainers.image.title=kfp-operator-stub-compiler
}

# What config/argo/workflow-templates.yaml runs in its helper images: `sh -c` scripts with curl, jq, printf, cat.
# User 1000 as the templates' securityContext.
build_tools() {
    local b libs busybox etc
    for b in /usr/bin/curl /usr/bin/jq; do [[ -x "$b" ]] || die "$b missing: apt-get install curl jq"; done
    libs="$(libraries /usr/bin/curl /usr/bin/jq)"
    busybox="$(busybox_files)"
    etc="$(etc_files)"
    # shellcheck disable=SC2086
    image "$REGISTRY/kfp-operator-tools:$VERSION" /usr/bin/curl:/usr/bin/curl /usr/bin/jq:/usr/bin/jq \
        $libs $busybox $etc --user 1000 --cmd '["/bin/sh"]' \
        --label org.opencontainers.image.title=kfp-operator-tools
}

# Argo's executor as its own image lays it out (/bin/argoexec, entrypoint argoexec, user 8737): static, so nothing
# else but CA certificates (artifact repositories over HTTPS).
build_argoexec() {
    [[ -x "$ARGOEXEC" ]] || die "$ARGOEXEC missing: run scripts/cluster/build-node-assets.sh"
    local etc
    etc="$(etc_files)"
    # shellcheck disable=SC2086
    image "$REGISTRY/argoexec:$ARGO_VERSION" "$ARGOEXEC:/bin/argoexec" $etc \
        --user 8737 --entrypoint '["argoexec"]' --label org.opencontainers.image.title=argoexec
}

# The kfpsdk framework image: compilers/assemble.sh's layout with the kfp SDK beside the compiler (PYTHONPATH=/shared
# finds both once /entrypoint.sh copied them), as the Dockerfile's `pip install --target /compiler`; the packages come
# from the venv scripts/python-env.sh installs from the same pinned requirements, without its test-only ones.
build_kfpsdk_compiler() {
    local venv="${KFP_OPERATOR_VENV:-${HOME}/.cache/kfp-operator/venv}" site busybox etc
    site="$(echo "$venv"/lib/python3.*/site-packages)"
    [[ -d "$site/kfp" ]] || die "no kfp SDK in $venv: run scripts/python-env.sh (or set KFP_OPERATOR_VENV)"
    sh "$ROOT/compilers/assemble.sh" kfpsdk "$WORK/kfpsdk" >/dev/null
    cp -R "$site"/. "$WORK/kfpsdk/compiler/"
    (cd "$WORK/kfpsdk/compiler" && rm -rf pip pip-* setuptools setuptools-* pkg_resources _distutils_hack \
        distutils-precedence.pth pytest pytest-* _pytest pluggy pluggy-* iniconfig iniconfig-* py.py pygments \
        pygments-* && find . -name __pycache__ -type d -prune -exec rm -rf {} +)
    busybox="$(busybox_files)"
    etc="$(etc_files)"
    # shellcheck disable=SC2086
    image "$REGISTRY/kfp-operator-kfpsdk-compiler:$VERSION" "$WORK/kfpsdk/compiler:/compiler" \
        "$WORK/kfpsdk/entrypoint.sh:/entrypoint.sh" $busybox $etc --user 1000 --entrypoint '["/entrypoint.sh"]' \
        --label org.opencontainers.image.title=kfp-operator-kfpsdk-compiler
}

# A pipeline image for the examples' KFP SDK pipelines: python3 (Debian's, with its standard library and the
# shared libraries its modules link), busybox's sh for the compile shim, the pipelines in /pipelines.
build_example_pipelines() {
    local python lib libs busybox etc
    # Debian's interpreter (not a pyenv shim or a venv's): its standard library is where the image expects it.
    [[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 missing: apt-get install python3"
    python="$(readlink -f /usr/bin/python3)"
    lib="/usr/lib/$(basename "$python")"
    [[ -d "$lib" ]] || die "$python has no standard library at $lib (Debian: apt-get install python3)"
    # The libraries of the standard library's modules and of the kfp SDK's (the kfpsdk framework image brings the SDK,
    # this image the libraries it links), and libgcc_s, which glibc opens at run time (thread cancellation) so ldd
    # never lists it.
    local venv="${KFP_OPERATOR_VENV:-${HOME}/.cache/kfp-operator/venv}" gcc_s
    # (awk reads to the end: an early exit would fail the pipeline with SIGPIPE under pipefail.)
    gcc_s="$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64/ && !found {print $NF; found = 1}')"
    [[ -n "$gcc_s" ]] || die "libgcc_s.so.1 not found (Debian: apt-get install libgcc-s1)"
    # (Libraries the wheels bundle, under the venv, come with the SDK itself: only the machine's are added.)
    # shellcheck disable=SC2046 # one word per file found
    libs="$(libraries "$python" "$lib"/lib-dynload/*.so $(find "$venv"/lib/python3.*/site-packages -name '*.so*' -type f) \
        | grep -v "^$(readlink -f "$venv")\|^$venv" || true)
$gcc_s:$gcc_s"
    busybox="$(busybox_files)"
    etc="$(etc_files)"
    # shellcheck disable=SC2086
    image "$REGISTRY/kfp-operator-example-pipelines:$VERSION" "$python:/usr/bin/$(basename "$python")" \
        --link "$(basename "$python"):/usr/bin/python3" "$lib:$lib" $libs $busybox $etc \
        "$ROOT/examples/pipelines:/pipelines" --env PYTHONPATH=/pipelines --user 1000 --cmd '["python3"]' \
        --label org.opencontainers.image.title=kfp-operator-example-pipelines
}

main() {
    local images=()
    while (($#)); do
        case "$1" in
            --out) [[ $# -ge 2 ]] || die "--out needs a folder"; OUT="$2"; shift 2 ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; return ;;
            -*) die "unknown option $1" ;;
            *) images+=("$1"); shift ;;
        esac
    done
    ((${#images[@]})) || images=("${ALL[@]}")
    [[ -n "$VERSION" ]] || die "no [workspace.package] version in $ROOT/Cargo.toml"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
    local i
    for i in "${images[@]}"; do
        case "$i" in
            operator | stub-provider | stub-compiler | tools | argoexec | kfpsdk-compiler | example-pipelines)
                "build_${i//-/_}" ;;
            *) die "unknown image $i (known: ${ALL[*]})" ;;
        esac
    done
    echo "$OUT"
}

main "$@"
