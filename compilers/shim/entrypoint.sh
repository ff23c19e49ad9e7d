#!/bin/sh
# The framework image contract (compilers/README.md, "Images"): `/entrypoint.sh <dir>` copies the compiler
# (/compiler/*) into <dir>, the volume the pipeline image then runs <dir>/compile.sh from. The Argo `compile` step and
# the direct executor's Job compiler run it as an init container with <dir> = /shared. COMPILER_DIR overrides
# /compiler (for tests).
set -eu
if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 <dir>: copies the compiler into <dir>" >&2
    exit 2
fi
source="${COMPILER_DIR:-/compiler}"
if [ ! -f "$source/compile.sh" ]; then
    echo "no compiler at $source: the framework image must hold $source/compile.sh" >&2
    exit 1
fi
mkdir -p "$1"
cp -R "$source"/. "$1"/
echo "copied the compiler from $source to $1" >&2
