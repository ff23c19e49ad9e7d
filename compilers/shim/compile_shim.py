"""The compile-shim contract shared by the framework compilers (``compilers/README.md``).

A pipeline image runs ``<dir>/compile.sh --pipeline_config <file> --output_file <path>``; ``compile.sh`` runs
``python3 -m compiler``, whose ``__main__`` hands its framework's compile function to :func:`main`. This module
reads the flags and the patched PipelineDefinition (``{"name": "ns/name", "version", "image", "env": [...],
"framework": {"name", "parameters"}}``), exports the compile-time ``env``, imports ``module.fn`` references and
turns every failure into one line on stderr and a non-zero exit, so the operator can quote it in the Pipeline's
status.

Written for Python 3.9 and later (the versions pipeline images ship), standard library only.
"""

import argparse
import importlib
import json
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, NoReturn, Optional

__all__ = [
    "CompileError",
    "ENABLE_CACHING_KEY",
    "Definition",
    "export_env",
    "load_definition",
    "load_function",
    "main",
    "namespaced_pipeline_name",
    "write_json",
]

#: The framework parameter choosing execution caching for the pipeline's tasks (kfpsdk, tfx). Off unless set, as the
#: Go operator compiles (docs/platform-features.md).
ENABLE_CACHING_KEY = "enableCaching"

# Exit codes: a compile failure (the pipeline, its definition or its code), and a usage error of the shim itself.
EXIT_FAILED = 1
EXIT_USAGE = 2


class CompileError(Exception):
    """A failure to report to the user: one complete sentence naming the key and the value."""


class Definition:
    """The patched PipelineDefinition a compiler gets as ``--pipeline_config``, with typed access to its keys."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        if not isinstance(data, Mapping):
            raise CompileError(
                "the pipeline config {} is not a JSON object (got {})".format(source, type(data).__name__)
            )
        self.data = data
        self.source = source

    def text(self, key: str) -> str:
        """The non-empty string at the top-level ``key``."""
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CompileError(
                "the pipeline config {} has no {}: it must be a non-empty string (got {})".format(
                    self.source, key, _show(value)
                )
            )
        return value

    @property
    def name(self) -> str:
        """``namespace/name`` of the Pipeline resource."""
        return self.text("name")

    @property
    def image(self) -> str:
        """The pipeline image (``spec.image``)."""
        return self.text("image")

    @property
    def parameters(self) -> Mapping[str, Any]:
        """``framework.parameters`` (may be empty)."""
        framework = self.data.get("framework")
        if not isinstance(framework, Mapping):
            raise CompileError(
                "the pipeline config {} has no framework object (got {})".format(self.source, _show(framework))
            )
        parameters = framework.get("parameters")
        if parameters is None:
            return {}
        if not isinstance(parameters, Mapping):
            raise CompileError(
                "framework.parameters of the pipeline config {} must be an object (got {})".format(
                    self.source, _show(parameters)
                )
            )
        return parameters

    def parameter(self, *keys: str) -> Any:
        """The first of ``framework.parameters.<key>`` that is set (aliases in order), or ``None``."""
        parameters = self.parameters
        for key in keys:
            if parameters.get(key) is not None:
                return parameters[key]
        return None

    def flag(self, key: str, default: bool) -> bool:
        """``framework.parameters.<key>`` as a boolean (``true``/``false``, or that text in any case), else
        ``default``."""
        raw = self.parameter(key)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise CompileError("framework.parameters.{} must be true or false (got {})".format(key, _show(raw)))

    def env(self) -> Dict[str, str]:
        """The compile-time ``env`` (``[{name, value}]``; a ``{name: value}`` map is accepted too)."""
        raw = self.data.get("env")
        if raw is None:
            return {}
        if isinstance(raw, Mapping):
            entries = [{"name": k, "value": v} for k, v in raw.items()]
        elif isinstance(raw, list):
            entries = raw
        else:
            raise CompileError(
                "env of the pipeline config {} must be a list of {{name, value}} (got {})".format(
                    self.source, _show(raw)
                )
            )
        env = {}
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not name or "=" in name:
                raise CompileError(
                    "env[{}] of the pipeline config {} needs a name without '=' (got {})".format(
                        index, self.source, _show(entry)
                    )
                )
            value = entry.get("value")
            env[name] = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        return env


def _show(value: Any) -> str:
    """A value as it appears in a message: JSON where possible, short."""
    if value is None:
        return "nothing"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def load_definition(path: str) -> Definition:
    """Reads the pipeline config file (the PipelineDefinition JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            return Definition(json.load(f), path)
    except OSError as e:
        raise CompileError("cannot read the pipeline config {}: {}".format(path, e.strerror or e)) from e
    except ValueError as e:
        raise CompileError("the pipeline config {} is not JSON: {}".format(path, e)) from e


def export_env(env: Mapping[str, str]) -> None:
    """Puts the compile-time env into this process's environment, before any user code is imported."""
    os.environ.update(env)


def namespaced_pipeline_name(name: str) -> str:
    """The backend pipeline name of ``namespace/name``: ``namespace-name`` (``compilers/README.md``)."""
    return name.replace("/", "-")


def load_function(reference: Any, key: str) -> Callable[..., Any]:
    """Imports ``module.fn`` (the value of the framework parameter ``key``) and returns the attribute."""
    if not isinstance(reference, str) or not reference.strip():
        raise CompileError(
            "framework.parameters.{} must name a function as module.function (got {})".format(key, _show(reference))
        )
    reference = reference.strip()
    module_name, dot, attribute = reference.rpartition(".")
    if not dot or not module_name or not attribute:
        raise CompileError(
            "framework.parameters.{} is {}: it must name a function as module.function, "
            "e.g. getting_started.pipeline.add_pipeline".format(key, _show(reference))
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the user's module may raise anything while it is imported
        raise CompileError(
            "cannot import module {} named by framework.parameters.{} ({}): {}".format(
                _show(module_name), key, _show(reference), _one_line(e)
            )
        ) from e
    try:
        return getattr(module, attribute)
    except AttributeError as e:
        raise CompileError(
            "module {} has no {} (framework.parameters.{} is {})".format(
                _show(module_name), _show(attribute), key, _show(reference)
            )
        ) from e


def _one_line(error: BaseException) -> str:
    """``Type: message`` on one line."""
    message = " ".join(str(error).split())
    return "{}: {}".format(type(error).__name__, message) if message else type(error).__name__


def write_json(path: str, value: Any) -> None:
    """Writes the compiled pipeline as JSON, creating the output folder if needed."""
    folder = os.path.dirname(path)
    try:
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as e:
        raise CompileError("cannot write the output file {}: {}".format(path, e.strerror or e)) from e


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print("error: {}".format(message), file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parse_arguments(argv: List[str], prog: str) -> argparse.Namespace:
    """``--pipeline_config <file> --output_file <path>`` (both required; ``--flag=value`` works too)."""
    parser = _Parser(prog=prog, description="Compiles a pipeline definition (the KFP operator's compile shim).")
    parser.add_argument("--pipeline_config", required=True, help="the patched PipelineDefinition (JSON)")
    parser.add_argument("--output_file", required=True, help="where the compiled pipeline (JSON) is written")
    return parser.parse_args(argv)


def main(compile_fn: Callable[[Definition, str], None], prog: str, argv: Optional[List[str]] = None) -> int:
    """Runs ``compile_fn(definition, output_file)`` with the shim's flags; returns the exit code.

    A :class:`CompileError` (and any other exception, which is a bug in the pipeline's code or the compiler) is
    printed as one line ``error: <message>`` on stderr with exit code 1; bad flags exit 2.
    """
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv, prog)
    try:
        definition = load_definition(arguments.pipeline_config)
        compile_fn(definition, arguments.output_file)
    except CompileError as e:
        print("error: {}".format(e), file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # the user's pipeline code can raise anything: report it, do not dump a traceback
        print("error: compiling failed: {}".format(_one_line(e)), file=sys.stderr)
        return EXIT_FAILED
    return 0
