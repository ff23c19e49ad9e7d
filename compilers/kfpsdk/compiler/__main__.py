"""``python3 -m compiler --pipeline_config <file> --output_file <path>``: the KFP SDK compiler."""

import sys

from compile_shim import main

from compiler import compile_definition

sys.exit(main(compile_definition, prog="kfpsdk compiler"))
