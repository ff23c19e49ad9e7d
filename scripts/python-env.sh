#!/usr/bin/env bash
# The Python environment of the compilers: a virtualenv with compilers/requirements-dev.txt (kfp 2.17.3, pytest,
# all pinned). The compiler tests run in it (cargo test runs pytest from it: crates/kfp-operator/tests/controllers/compilers.rs),
# and `kfp-operator local` uses it to compile kfpsdk pipelines.
#
# Idempotent: a venv whose stamp matches the requirements file and the Python version is kept as it is; otherwise
# the requirements are (re)installed. The last line printed is the venv folder.
#
# Environment:
#   KFP_OPERATOR_VENV  the venv folder (default: $HOME/.cache/kfp-operator/venv)
#   PYTHON             the interpreter to create it with (default: python3; 3.9 or later)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${KFP_OPERATOR_VENV:-${HOME}/.cache/kfp-operator/venv}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="compilers/requirements-dev.txt"

log() { echo "python-env: $*" >&2; }
die() { echo "python-env: error: $*" >&2; exit 1; }

# A fresh Debian machine may lack python3 or its venv module (package python3-venv): install them when we can.
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [[ "$PYTHON" == python3 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing python3 and python3-venv with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null \
            || die "apt-get could not install python3 python3-venv"
    fi
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 \
        || die "$PYTHON with the venv module is needed (Debian: apt-get install python3 python3-venv), or set PYTHON"
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); the compilers need Python 3.9 or later"

stamp="$( { "$PYTHON" -V 2>&1; cat "$REQUIREMENTS"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python3" && "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" == "$stamp" ]]; then
    log "up to date: $VENV"
    echo "$VENV"
    exit 0
fi

started=$SECONDS
if [[ ! -x "$VENV/bin/python3" ]]; then
    log "creating $VENV with $("$PYTHON" -V 2>&1)"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv --clear "$VENV"
fi
log "installing $REQUIREMENTS"
"$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check --no-input --requirement "$REQUIREMENTS" \
    || die "pip could not install $REQUIREMENTS into $VENV"
"$VENV/bin/python3" -c 'import kfp, pytest' || die "kfp or pytest does not import in $VENV"
echo "$stamp" >"$VENV/.requirements-stamp"
log "ready in $((SECONDS - started))s: $VENV"
echo "$VENV"
