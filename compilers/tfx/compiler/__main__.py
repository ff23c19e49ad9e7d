"""``python3 -m compiler --pipeline_config <file> --output_file <path>``: the TFX compiler."""

import sys

from compile_shim import main

from compiler import compile_definition

sys.exit(main(compile_definition, prog="tfx compiler"))
