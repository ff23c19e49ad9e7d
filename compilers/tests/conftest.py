"""Shared fixtures of the compiler tests: paths, the two `compiler` packages under distinct names, and a runner
for the compile shims as the operator runs them (a subprocess with the two flags)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPILERS = Path(__file__).resolve().parent.parent
ROOT = COMPILERS.parent
EXAMPLE_PIPELINES = ROOT / "examples" / "pipelines"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

sys.path.insert(0, str(COMPILERS / "shim"))
sys.path.insert(0, str(FIXTURES))


def load_framework(framework):
    """compilers/<framework>/compiler imported as `<framework>_compiler` (both packages are called `compiler`)."""
    name = "{}_compiler".format(framework)
    if name in sys.modules:
        return sys.modules[name]
    init = COMPILERS / framework / "compiler" / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Shim:
    """Runs `<compile.sh> --pipeline_config <definition> --output_file <out>` with this interpreter."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def run(self, script, definition, pythonpath=(), env=None):
        config = self.tmp_path / "definition.json"
        config.write_text(json.dumps(definition) if not isinstance(definition, str) else definition)
        output = self.tmp_path / "compiled.json"
        environment = dict(os.environ)
        environment.pop("PYTHONPATH", None)
        environment["PYTHON"] = sys.executable
        if pythonpath:
            environment["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
        environment.update(env or {})
        process = subprocess.run(
            [str(script), "--pipeline_config", str(config), "--output_file", str(output)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        compiled = json.loads(output.read_text()) if output.exists() else None
        return process, compiled


@pytest.fixture
def shim(tmp_path):
    return Shim(tmp_path)


def definition(framework, parameters, name="team-a/add-pipeline", image="registry.example/pipelines:v1", env=None):
    """A patched PipelineDefinition as the operator writes it (docs/provider-service.md, "Request bodies")."""
    value = {"name": name, "version": "v1-abc123", "image": image, "framework": {"name": framework, "parameters": parameters}}
    if env is not None:
        value["env"] = env
    return value


def one_line_error(process):
    """The shim's failure: exit 1 and exactly one line `error: ...` on stderr; returns the message."""
    assert process.returncode == 1, (process.returncode, process.stdout, process.stderr)
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0][len("error: "):]
