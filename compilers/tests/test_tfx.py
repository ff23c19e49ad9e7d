"""The tfx compiler up to TFX itself: TFX does not install on this machine (see compilers/README.md), so the part
that reads the definition, imports the user's components function and builds the runner's arguments is tested
with a recording backend, and the real backend's calls into `tfx.v1` with a stand-in module of the same API."""

import json
import sys
import types

import pytest

from conftest import COMPILERS, definition, load_framework, one_line_error

from compile_shim import CompileError, Definition

tfx_compiler = load_framework("tfx")
SCRIPT = COMPILERS / "tfx" / "compile.sh"


def tfx_definition(parameters, **kwargs):
    return Definition(definition("tfx", parameters, **kwargs), "definition.json")


class RecordingBackend(tfx_compiler.TfxBackend):
    def __init__(self):
        self.calls = []

    def compile(self, arguments, components):
        self.calls.append((arguments, components))
        return {"displayName": arguments.pipeline_name, "labels": {}, "pipelineSpec": {"components": components}}


def test_runner_arguments_follow_the_definition():
    parameters = {
        "components": "tfx_components.create_components",
        "beamArgs": [{"name": "project", "value": "my-project"}, {"name": "direct_num_workers", "value": 2}],
    }
    arguments = tfx_compiler.runner_arguments(tfx_definition(parameters))
    assert arguments == tfx_compiler.RunnerArguments(
        pipeline_name="team-a-add-pipeline",
        default_image="registry.example/pipelines:v1",
        use_pipeline_spec_2_1=True,
        beam_pipeline_args=["--project=my-project", "--direct_num_workers=2"],
        pipeline_root="",
        enable_cache=False,
    )


def test_use_pipeline_spec_2_1_defaults_to_true_and_is_validated():
    spec_2_1 = lambda value: tfx_compiler.use_pipeline_spec_2_1(tfx_definition({"usePipelineSpec2_1": value}))
    assert tfx_compiler.use_pipeline_spec_2_1(tfx_definition({})) is True
    assert spec_2_1(False) is False
    assert spec_2_1("False") is False
    assert spec_2_1("true") is True
    with pytest.raises(CompileError, match='framework.parameters.usePipelineSpec2_1 must be true or false \\(got "yes"\\)'):
        spec_2_1("yes")


def test_enable_caching_sets_tfx_enable_cache_default_off():
    enable_cache = lambda parameters: tfx_compiler.runner_arguments(tfx_definition(parameters)).enable_cache
    base = {"components": "tfx_components.create_components"}
    assert enable_cache(base) is False
    assert enable_cache({**base, "enableCaching": True}) is True
    assert enable_cache({**base, "enableCaching": "TRUE"}) is True
    assert enable_cache({**base, "enableCaching": "false"}) is False
    with pytest.raises(CompileError, match="framework.parameters.enableCaching must be true or false \\(got 1\\)"):
        enable_cache({**base, "enableCaching": 1})


def test_beam_args_must_be_named_pairs():
    with pytest.raises(CompileError, match="framework.parameters.beamArgs must be a list of \\{name, value\\}"):
        tfx_compiler.beam_pipeline_args(tfx_definition({"beamArgs": "--a=b"}))
    with pytest.raises(CompileError, match="framework.parameters.beamArgs\\[1\\] needs a name"):
        tfx_compiler.beam_pipeline_args(tfx_definition({"beamArgs": [{"name": "a", "value": "b"}, {"value": "c"}]}))
    assert tfx_compiler.beam_pipeline_args(tfx_definition({"beamArgs": [{"name": "flag"}]})) == ["--flag="]


def test_pipeline_is_an_alias_of_components():
    reference = tfx_compiler.components_reference
    assert reference(tfx_definition({"components": "a.b"})) == ("components", "a.b")
    assert reference(tfx_definition({"pipeline": "a.b"})) == ("pipeline", "a.b")
    assert reference(tfx_definition({"components": "a.b", "pipeline": "a.b"})) == ("components", "a.b")
    with pytest.raises(CompileError, match="framework.parameters.components \\('a.b'\\) and its alias .* \\('c.d'\\) differ"):
        reference(tfx_definition({"components": "a.b", "pipeline": "c.d"}))
    with pytest.raises(CompileError, match="has no framework.parameters.components \\(or its alias pipeline\\)"):
        reference(tfx_definition({"beamArgs": []}))


def test_the_components_function_is_called_after_the_env_is_exported(tmp_path, monkeypatch):
    import tfx_components

    monkeypatch.delenv("TRAINING_STEPS", raising=False)
    tfx_components.CALLS.clear()
    backend = RecordingBackend()
    output = tmp_path / "out.json"
    env = [{"name": "TRAINING_STEPS", "value": "100"}]
    compiled = tfx_definition({"pipeline": "tfx_components.create_components"}, env=env)
    tfx_compiler.compile_definition(compiled, str(output), backend=backend)
    assert tfx_components.CALLS == ["100"]
    (arguments, components), = backend.calls
    assert components == ["CsvExampleGen", "Trainer"]
    assert arguments.pipeline_name == "team-a-add-pipeline"
    assert json.loads(output.read_text())["displayName"] == "team-a-add-pipeline"


def test_components_functions_that_misbehave_are_named():
    load = tfx_compiler.load_components
    with pytest.raises(CompileError, match="framework.parameters.pipeline \\('tfx_components.returns_a_dict'\\) returned dict, not a list"):
        load("pipeline", "tfx_components.returns_a_dict")
    with pytest.raises(CompileError, match="calling framework.parameters.components \\('tfx_components.fails'\\) failed: KeyError: 'DATA_ROOT'"):
        load("components", "tfx_components.fails")
    with pytest.raises(CompileError, match="'tfx_components.NOT_CALLABLE', which is not a function"):
        load("components", "tfx_components.NOT_CALLABLE")


class FakeTfx:
    """A stand-in for `tfx.v1` with the signatures of TFX 1.x that the backend calls (keyword arguments only, as
    TFX's own `Pipeline` and `KubeflowV2DagRunnerConfig` take them)."""

    def __init__(self):
        self.calls = []
        fake = self

        class Pipeline:
            def __init__(self, *, pipeline_name, pipeline_root, components, enable_cache, beam_pipeline_args):
                fake.calls.append(("Pipeline", dict(pipeline_name=pipeline_name, pipeline_root=pipeline_root,
                                                    components=components, enable_cache=enable_cache,
                                                    beam_pipeline_args=beam_pipeline_args)))
                self.pipeline_name = pipeline_name

        class KubeflowV2DagRunnerConfig:
            def __init__(self, display_name=None, default_image=None, default_commands=None,
                         use_pipeline_spec_2_1=False, **kwargs):
                fake.calls.append(("KubeflowV2DagRunnerConfig", dict(display_name=display_name,
                                                                     default_image=default_image,
                                                                     use_pipeline_spec_2_1=use_pipeline_spec_2_1)))
                self.display_name = display_name

        class KubeflowV2DagRunner:
            def __init__(self, config, output_dir=None, output_filename=None):
                assert isinstance(config, KubeflowV2DagRunnerConfig)
                self.config = config

            def run(self, pipeline, parameter_values=None, write_out=True):
                fake.calls.append(("run", dict(write_out=write_out)))
                return {"displayName": self.config.display_name, "labels": {"tfx_runner": "kubeflow_v2"},
                        "pipelineSpec": {"pipelineInfo": {"name": pipeline.pipeline_name}}}

        v1 = types.ModuleType("tfx.v1")
        v1.dsl = types.SimpleNamespace(Pipeline=Pipeline)
        v1.orchestration = types.SimpleNamespace(experimental=types.SimpleNamespace(
            KubeflowV2DagRunner=KubeflowV2DagRunner, KubeflowV2DagRunnerConfig=KubeflowV2DagRunnerConfig))
        self.package = types.ModuleType("tfx")
        self.package.v1 = v1
        self.v1 = v1


def test_the_backend_builds_the_pipeline_and_runs_kubeflow_v2_dag_runner(monkeypatch):
    fake = FakeTfx()
    monkeypatch.setitem(sys.modules, "tfx", fake.package)
    monkeypatch.setitem(sys.modules, "tfx.v1", fake.v1)
    arguments = tfx_compiler.RunnerArguments("ns-p", "img:1", False, ["--a=b"])
    job = tfx_compiler.TfxBackend().compile(arguments, ("c1", "c2"))
    assert job == {"displayName": "ns-p", "labels": {"tfx_runner": "kubeflow_v2"},
                   "pipelineSpec": {"pipelineInfo": {"name": "ns-p"}}}
    assert fake.calls == [
        ("Pipeline", dict(pipeline_name="ns-p", pipeline_root="", components=["c1", "c2"], enable_cache=False,
                          beam_pipeline_args=["--a=b"])),
        ("KubeflowV2DagRunnerConfig", dict(display_name="ns-p", default_image="img:1", use_pipeline_spec_2_1=False)),
        ("run", dict(write_out=False)),
    ]


def test_without_tfx_the_backend_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tfx", None)
    with pytest.raises(CompileError, match="the tfx compiler needs the tfx package"):
        tfx_compiler.TfxBackend().compile(tfx_compiler.RunnerArguments("ns-p", "img:1", True, []), [])


def test_the_shim_reports_definition_errors_in_one_line(shim):
    message = one_line_error(shim.run(SCRIPT, definition("tfx", {"components": "nodot"}))[0])
    assert message.startswith('framework.parameters.components is "nodot": it must name a function as module.function')
    message = one_line_error(shim.run(SCRIPT, definition("tfx", {"usePipelineSpec2_1": 3, "components": "a.b"}))[0])
    assert message == "framework.parameters.usePipelineSpec2_1 must be true or false (got 3)"
