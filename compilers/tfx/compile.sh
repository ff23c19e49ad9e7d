#!/bin/sh
# The TFX compile shim (compilers/README.md, "tfx"): builds the TFX pipeline of framework.parameters.components
# (module.fn; alias `pipeline`) and compiles it with KubeflowV2DagRunner into a PipelineJob JSON.
#   compile.sh --pipeline_config <definition.json> --output_file <compiled.json>
# In a pipeline image this file is /shared/compile.sh, put there by the tfx framework image's /entrypoint.sh;
# /shared/py<major.minor> holds the compiler's dependencies (tfx) for that Python (images ship 3.9 and 3.10) and
# comes before the image's own packages, as in the Go operator. PYTHON selects another interpreter.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
shim="$here"
[ -f "$here/compile_shim.py" ] || shim="$here/../shim"
PYTHONPATH="$here:$here/py$version:$shim${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "$python" -m compiler "$@"
