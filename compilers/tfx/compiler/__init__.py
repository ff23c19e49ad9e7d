"""The TFX compiler (``compilers/README.md``, "tfx"): imports the user's components function, builds a TFX pipeline
named ``namespace-name`` with the Beam arguments (caching off unless ``enableCaching``), and compiles it with TFX's
``KubeflowV2DagRunner`` into a PipelineJob JSON (``displayName``, ``labels``, ``pipelineSpec``), which the providers
unwrap.

Framework parameters:

- ``components`` (``module.fn``; ``pipeline`` is accepted as an alias, as published examples use it): a function
  returning the list of TFX components;
- ``beamArgs``: ``[{name, value}]``, passed as ``--name=value`` Beam pipeline arguments;
- ``usePipelineSpec2_1``: compile to pipeline spec schema 2.1 (default true);
- ``enableCaching``: TFX's ``enable_cache`` (default false, as the Go operator compiles).

Everything that touches TFX sits behind :class:`TfxBackend`, so the part that reads the definition and builds the
runner's arguments is tested without TFX installed.
"""

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from compile_shim import (
    ENABLE_CACHING_KEY,
    CompileError,
    Definition,
    export_env,
    load_function,
    namespaced_pipeline_name,
    write_json,
)

#: The framework parameter naming the components function, then its alias (``compilers/README.md``, "tfx").
COMPONENTS_KEYS = ("components", "pipeline")
BEAM_ARGS_KEY = "beamArgs"
SPEC_2_1_KEY = "usePipelineSpec2_1"


class RunnerArguments(NamedTuple):
    """What the TFX pipeline and its ``KubeflowV2DagRunner`` are built with."""

    #: ``namespace-name``: the TFX pipeline name and the runner's display name.
    pipeline_name: str
    #: The pipeline image: the runner's ``default_image``.
    default_image: str
    use_pipeline_spec_2_1: bool
    #: ``--name=value`` per ``beamArgs`` entry, in order.
    beam_pipeline_args: List[str]
    #: Where run outputs go; empty here, the provider sets the pipeline root of each run (``compilers/README.md``,
    #: "tfx").
    pipeline_root: str = ""
    enable_cache: bool = False


class TfxBackend:
    """The seam to TFX: builds the ``tfx.dsl.Pipeline`` and runs ``KubeflowV2DagRunner`` on it (``tfx.v1`` API)."""

    def compile(self, arguments: RunnerArguments, components: Sequence[Any]) -> Dict[str, Any]:
        """The PipelineJob dict of the pipeline (not written anywhere: the caller writes JSON)."""
        try:
            from tfx import v1 as tfx
        except ImportError as e:
            raise CompileError(
                "the tfx compiler needs the tfx package (in the image or the compiler's py<version> folder): "
                "{}".format(e)
            ) from e
        pipeline = tfx.dsl.Pipeline(
            pipeline_name=arguments.pipeline_name,
            pipeline_root=arguments.pipeline_root,
            components=list(components),
            enable_cache=arguments.enable_cache,
            beam_pipeline_args=list(arguments.beam_pipeline_args),
        )
        experimental = tfx.orchestration.experimental
        config = experimental.KubeflowV2DagRunnerConfig(
            display_name=arguments.pipeline_name,
            default_image=arguments.default_image,
            use_pipeline_spec_2_1=arguments.use_pipeline_spec_2_1,
        )
        runner = experimental.KubeflowV2DagRunner(config=config)
        return runner.run(pipeline, write_out=False)


def components_reference(definition: Definition) -> Tuple[str, str]:
    """``(key, module.fn)`` of ``framework.parameters.components``, or of its alias ``pipeline``; both set must
    agree."""
    values = [(key, definition.parameter(key)) for key in COMPONENTS_KEYS]
    given = [(key, value) for key, value in values if value is not None]
    if not given:
        raise CompileError(
            "the pipeline config {} has no framework.parameters.components (or its alias pipeline): set it to the "
            "function returning the TFX components as module.function".format(definition.source)
        )
    if len(given) == 2 and given[0][1] != given[1][1]:
        raise CompileError(
            "framework.parameters.components ({!r}) and its alias framework.parameters.pipeline ({!r}) differ: "
            "set only one".format(given[0][1], given[1][1])
        )
    return given[0]


def beam_pipeline_args(definition: Definition) -> List[str]:
    """``beamArgs`` (``[{name, value}]``) as ``--name=value``."""
    raw = definition.parameter(BEAM_ARGS_KEY)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CompileError(
            "framework.parameters.beamArgs must be a list of {{name, value}} (got {!r})".format(raw)
        )
    arguments = []
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise CompileError(
                "framework.parameters.beamArgs[{}] needs a name (got {!r})".format(index, entry)
            )
        value = entry.get("value")
        arguments.append("--{}={}".format(name, "" if value is None else value))
    return arguments


def use_pipeline_spec_2_1(definition: Definition) -> bool:
    """``usePipelineSpec2_1``: a boolean (or the text true/false), default true."""
    return definition.flag(SPEC_2_1_KEY, True)


def runner_arguments(definition: Definition) -> RunnerArguments:
    """The runner's arguments from the definition (no TFX needed)."""
    return RunnerArguments(
        pipeline_name=namespaced_pipeline_name(definition.name),
        default_image=definition.image,
        use_pipeline_spec_2_1=use_pipeline_spec_2_1(definition),
        beam_pipeline_args=beam_pipeline_args(definition),
        enable_cache=definition.flag(ENABLE_CACHING_KEY, False),
    )


def load_components(key: str, reference: str) -> List[Any]:
    """Imports and calls the components function (named by ``framework.parameters.<key>``); it must return a list
    (or tuple) of components."""
    function = load_function(reference, key)
    if not callable(function):
        raise CompileError("framework.parameters.{} is {!r}, which is not a function".format(key, reference))
    try:
        components = function()
    except Exception as e:  # the user's function may raise anything
        raise CompileError(
            "calling framework.parameters.{} ({!r}) failed: {}: {}".format(
                key, reference, type(e).__name__, " ".join(str(e).split())
            )
        ) from e
    if not isinstance(components, (list, tuple)):
        raise CompileError(
            "framework.parameters.{} ({!r}) returned {}, not a list of TFX components".format(
                key, reference, type(components).__name__
            )
        )
    return list(components)


def compile_definition(definition: Definition, output_file: str, backend: Optional[TfxBackend] = None) -> None:
    """Compiles the definition's TFX pipeline and writes the PipelineJob JSON to ``output_file``."""
    arguments = runner_arguments(definition)
    key, reference = components_reference(definition)
    export_env(definition.env())
    components = load_components(key, reference)
    write_json(output_file, (backend or TfxBackend()).compile(arguments, components))
