#!/bin/sh
# The stub compiler (compilers/README.md): accepts the compile shim's flags and writes {"foo": "bar"} to the output
# file. Used by the stub provider's pipelines, the direct executor's local compiler and tests.
#   compile.sh --pipeline_config <definition.json> --output_file <compiled.json>
set -eu

usage() {
    echo "usage: $0 --pipeline_config <file> --output_file <path>" >&2
    exit 2
}

config=""
output=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --pipeline_config) [ "$#" -ge 2 ] || usage; config="$2"; shift 2 ;;
        --pipeline_config=*) config="${1#*=}"; shift ;;
        --output_file) [ "$#" -ge 2 ] || usage; output="$2"; shift 2 ;;
        --output_file=*) output="${1#*=}"; shift ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

[ -n "$config" ] && [ -n "$output" ] || usage
if [ ! -r "$config" ]; then
    echo "cannot read the pipeline config $config" >&2
    exit 1
fi

printf '{"foo": "bar"}\n' > "$output"
