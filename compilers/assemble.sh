#!/bin/sh
# Lays out one framework's compiler as its framework image holds it in /compiler:
#   compile.sh, compiler/ (the `python3 -m compiler` package), compile_shim.py
# plus /entrypoint.sh beside the folder. The Dockerfiles run it; tests run it to check the image contract.
#   compilers/assemble.sh <kfpsdk|tfx> <dest>    -> <dest>/compiler/..., <dest>/entrypoint.sh
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: $0 <framework> <dest>" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
framework="$1"
dest="$2"
if [ ! -f "$here/$framework/compile.sh" ] || [ ! -d "$here/$framework/compiler" ]; then
    echo "unknown framework $framework: expected $here/$framework/compile.sh and $here/$framework/compiler/" >&2
    exit 2
fi
mkdir -p "$dest/compiler"
cp "$here/$framework/compile.sh" "$here/shim/compile_shim.py" "$dest/compiler/"
cp -R "$here/$framework/compiler" "$dest/compiler/"
find "$dest/compiler" -name '__pycache__' -type d -prune -exec rm -rf {} +
cp "$here/shim/entrypoint.sh" "$dest/entrypoint.sh"
chmod +x "$dest/entrypoint.sh" "$dest/compiler/compile.sh"
