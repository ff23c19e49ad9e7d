"""The shared compile-shim contract: flags, the definition, env, module.fn references, one-line errors."""

import json
import os

import pytest

import compile_shim
from compile_shim import CompileError, Definition


def test_flags_are_required_and_accept_both_spellings(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compile_shim.parse_arguments(["--pipeline_config", "x.json"], prog="test")
    assert exit_info.value.code == compile_shim.EXIT_USAGE
    assert "--output_file" in capsys.readouterr().err
    arguments = compile_shim.parse_arguments(["--pipeline_config=a.json", "--output_file", "b.json"], prog="test")
    assert (arguments.pipeline_config, arguments.output_file) == ("a.json", "b.json")


def test_unreadable_and_malformed_definitions_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(CompileError, match="cannot read the pipeline config .*missing.json"):
        compile_shim.load_definition(str(missing))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(CompileError, match="garbage.json is not JSON"):
        compile_shim.load_definition(str(garbage))
    array = tmp_path / "array.json"
    array.write_text("[]")
    with pytest.raises(CompileError, match="array.json is not a JSON object \\(got list\\)"):
        compile_shim.load_definition(str(array))


def test_required_keys_are_named():
    definition = Definition({"name": "ns/p", "image": "", "framework": {"name": "kfpsdk"}}, "def.json")
    assert definition.name == "ns/p"
    with pytest.raises(CompileError, match="def.json has no image: it must be a non-empty string \\(got \"\"\\)"):
        definition.image
    assert definition.parameters == {}
    with pytest.raises(CompileError, match="has no framework object \\(got nothing\\)"):
        Definition({"name": "ns/p"}, "def.json").parameters
    with pytest.raises(CompileError, match="framework.parameters of the pipeline config def.json must be an object"):
        Definition({"framework": {"parameters": []}}, "def.json").parameters


def test_env_is_read_as_a_list_or_a_map_and_exported(monkeypatch):
    listed = Definition({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": 2}, {"name": "C"}]}, "d")
    assert listed.env() == {"A": "1", "B": "2", "C": ""}
    assert Definition({"env": {"A": "x"}}, "d").env() == {"A": "x"}
    assert Definition({}, "d").env() == {}
    with pytest.raises(CompileError, match="env\\[1\\] of the pipeline config d needs a name without '='"):
        Definition({"env": [{"name": "A"}, {"name": "B=C", "value": "x"}]}, "d").env()
    monkeypatch.delenv("KFP_SHIM_TEST", raising=False)
    compile_shim.export_env({"KFP_SHIM_TEST": "exported"})
    assert os.environ["KFP_SHIM_TEST"] == "exported"


def test_pipeline_names_replace_the_namespace_separator():
    assert compile_shim.namespaced_pipeline_name("team-a/add-pipeline") == "team-a-add-pipeline"


def test_function_references_fail_with_the_key_and_the_value():
    assert compile_shim.load_function("sample_pipelines.not_a_pipeline", "pipeline").__name__ == "not_a_pipeline"
    with pytest.raises(CompileError, match="framework.parameters.pipeline is \"nodot\": it must name a function as module.function"):
        compile_shim.load_function("nodot", "pipeline")
    with pytest.raises(CompileError, match="framework.parameters.components must name a function .* \\(got 3\\)"):
        compile_shim.load_function(3, "components")
    with pytest.raises(
        CompileError,
        match="cannot import module \"no_such_module\" named by framework.parameters.pipeline \\(\"no_such_module.fn\"\\): "
        "ModuleNotFoundError: No module named 'no_such_module'",
    ):
        compile_shim.load_function("no_such_module.fn", "pipeline")
    with pytest.raises(CompileError, match="ValueError: the training data path is not configured"):
        compile_shim.load_function("broken_module.fn", "pipeline")
    with pytest.raises(CompileError, match="module \"sample_pipelines\" has no \"nope\""):
        compile_shim.load_function("sample_pipelines.nope", "pipeline")


def test_main_reports_one_line_and_exit_codes(tmp_path, capsys):
    config = tmp_path / "d.json"
    config.write_text(json.dumps({"name": "ns/p"}))
    out = str(tmp_path / "out.json")

    def fails(definition, output_file):
        raise CompileError("framework.parameters.pipeline is missing")

    assert compile_shim.main(fails, "test", ["--pipeline_config", str(config), "--output_file", out]) == 1
    assert capsys.readouterr().err == "error: framework.parameters.pipeline is missing\n"

    def crashes(definition, output_file):
        raise ZeroDivisionError("division by zero\nin user code")

    assert compile_shim.main(crashes, "test", ["--pipeline_config", str(config), "--output_file", out]) == 1
    assert capsys.readouterr().err == "error: compiling failed: ZeroDivisionError: division by zero in user code\n"

    def writes(definition, output_file):
        compile_shim.write_json(output_file, {"name": definition.name})

    nested = str(tmp_path / "new" / "folder" / "out.json")
    assert compile_shim.main(writes, "test", ["--pipeline_config", str(config), "--output_file", nested]) == 0
    assert json.loads(open(nested).read()) == {"name": "ns/p"}
