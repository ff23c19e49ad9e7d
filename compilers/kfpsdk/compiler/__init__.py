"""The KFP SDK compiler (``compilers/README.md``, "kfpsdk"): compiles ``framework.parameters.pipeline``
(``module.fn``, a function decorated with ``@dsl.pipeline``) with the ``kfp`` SDK's ``Compiler`` into KFP IR
(PipelineSpec) JSON, named ``namespace-name``.

Before the user's module is imported, the definition's ``env`` is exported and ``KFP_PIPELINE_IMAGE`` is set to the
Pipeline's ``image``, so components can use it as their base image. Tasks do not cache (``compile.sh`` sets
``KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT=true``, as the Go operator does) unless ``framework.parameters.enableCaching``
is true; a task's own ``set_caching_options`` still wins.
"""

import os
import tempfile
from typing import Any, Dict

from compile_shim import (
    ENABLE_CACHING_KEY,
    CompileError,
    Definition,
    export_env,
    load_function,
    namespaced_pipeline_name,
    write_json,
)

#: The framework parameter naming the pipeline function.
PIPELINE_KEY = "pipeline"
#: The environment variable the user's components read their base image from.
IMAGE_VARIABLE = "KFP_PIPELINE_IMAGE"
#: The kfp SDK's switch for the tasks' default caching, read when ``kfp`` is first imported.
CACHING_VARIABLE = "KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT"


def compile_definition(definition: Definition, output_file: str) -> None:
    """Compiles the pipeline the definition names and writes its IR JSON to ``output_file``."""
    name = definition.name
    image = definition.image
    reference = definition.parameter(PIPELINE_KEY)
    if reference is None:
        raise CompileError(
            "the pipeline config {} has no framework.parameters.{}: set it to the pipeline function as "
            "module.function, e.g. getting_started.pipeline.add_pipeline".format(definition.source, PIPELINE_KEY)
        )
    env = definition.env()
    env[IMAGE_VARIABLE] = image
    if definition.parameter(ENABLE_CACHING_KEY) is not None:
        # The framework parameter wins over compile.sh's default and over a KFP_... entry in env.
        env[CACHING_VARIABLE] = "false" if definition.flag(ENABLE_CACHING_KEY, False) else "true"
    export_env(env)
    pipeline = load_function(reference, PIPELINE_KEY)
    write_json(output_file, compile_pipeline(pipeline, namespaced_pipeline_name(name), reference))


def compile_pipeline(pipeline: Any, pipeline_name: str, reference: str) -> Dict[str, Any]:
    """The IR of ``pipeline`` (a ``@dsl.pipeline`` function) as a dict, with ``pipelineInfo.name = pipeline_name``."""
    try:
        import yaml
        from kfp import compiler
        from kfp.dsl import base_component
    except ImportError as e:
        raise CompileError(
            "the kfpsdk compiler needs the kfp package in the pipeline image (pip install kfp): {}".format(e)
        ) from e
    if not isinstance(pipeline, base_component.BaseComponent):
        raise CompileError(
            "framework.parameters.{} is {!r}, which is not a KFP pipeline: decorate the function with "
            "@dsl.pipeline (got {})".format(PIPELINE_KEY, reference, type(pipeline).__name__)
        )
    with tempfile.TemporaryDirectory(prefix="kfpsdk-compile-") as scratch:
        # YAML is the SDK's supported output (JSON output is deprecated); the provider wants JSON.
        path = os.path.join(scratch, "pipeline.yaml")
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=path, pipeline_name=pipeline_name)
        with open(path, encoding="utf-8") as f:
            documents = [d for d in yaml.safe_load_all(f) if d is not None]
    if len(documents) != 1:
        # The second document is a PlatformSpec (kfp-kubernetes features), which a PipelineSpec upload cannot carry.
        raise CompileError(
            "pipeline {} uses platform-specific features (a PlatformSpec, e.g. from kfp-kubernetes), which the "
            "operator cannot pass on: the compiled pipeline must be a single PipelineSpec".format(reference)
        )
    return documents[0]
