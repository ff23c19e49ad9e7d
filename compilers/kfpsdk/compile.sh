#!/bin/sh
# The KFP SDK compile shim (compilers/README.md): compiles framework.parameters.pipeline (module.fn) of the pipeline
# definition with the kfp SDK into KFP IR JSON.
#   compile.sh --pipeline_config <definition.json> --output_file <compiled.json>
# In a pipeline image this file is /shared/compile.sh, put there by the kfpsdk framework image's /entrypoint.sh;
# the image's python3 must have kfp installed and the user's pipeline module importable (its working directory or
# PYTHONPATH). PYTHON selects another interpreter (e.g. a virtualenv's, for the operator's local compiler).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
# The shared shim module sits beside this file in an image, in ../shim in the repository.
shim="$here"
[ -f "$here/compile_shim.py" ] || shim="$here/../shim"
PYTHONPATH="$here:$shim${PYTHONPATH:+:$PYTHONPATH}"
KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT=true
export PYTHONPATH KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT
exec "${PYTHON:-python3}" -m compiler "$@"
