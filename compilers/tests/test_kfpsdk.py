"""The kfpsdk compiler with the real kfp SDK: the example pipeline compiles to IR; bad definitions fail in one line."""

import json

from conftest import COMPILERS, EXAMPLE_PIPELINES, FIXTURES, ROOT, definition, one_line_error

import kfp

SCRIPT = COMPILERS / "kfpsdk" / "compile.sh"
EXAMPLE = "getting_started.pipeline.add_pipeline"


def test_the_sdk_is_the_pinned_one():
    assert kfp.__version__ == "2.17.3"


def test_the_example_pipeline_compiles_to_ir_named_namespace_name(shim):
    process, ir = shim.run(SCRIPT, definition("kfpsdk", {"pipeline": EXAMPLE}), pythonpath=[EXAMPLE_PIPELINES])
    assert process.returncode == 0, process.stderr
    assert ir["pipelineInfo"]["name"] == "team-a-add-pipeline"
    assert ir["sdkVersion"] == "kfp-2.17.3"
    assert ir["schemaVersion"] == "2.1.0"
    assert sorted(ir["root"]["inputDefinitions"]["parameters"]) == ["a", "b", "c"]
    assert sorted(ir["root"]["dag"]["tasks"]) == ["add", "add-2"]
    # KFP_PIPELINE_IMAGE = spec.image, set before the module was imported: the components' base image.
    images = {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/pipelines:v1"}
    # compile.sh sets KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT=true: no task caches.
    assert all(not t.get("cachingOptions", {}).get("enableCache") for t in ir["root"]["dag"]["tasks"].values())


def test_enable_caching_turns_task_caching_on_and_wins_over_env(shim):
    caching = lambda ir: {name: t.get("cachingOptions", {}).get("enableCache", False) for name, t in ir["root"]["dag"]["tasks"].items()}
    process, ir = shim.run(SCRIPT, definition("kfpsdk", {"pipeline": EXAMPLE, "enableCaching": True}), pythonpath=[EXAMPLE_PIPELINES])
    assert process.returncode == 0, process.stderr
    assert caching(ir) == {"add": True, "add-2": True}
    # The parameter wins over an env entry saying the opposite; "false" as text turns caching off.
    env = [{"name": "KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT", "value": "false"}]
    off = definition("kfpsdk", {"pipeline": EXAMPLE, "enableCaching": "false"}, env=env)
    process, ir = shim.run(SCRIPT, off, pythonpath=[EXAMPLE_PIPELINES])
    assert process.returncode == 0, process.stderr
    assert caching(ir) == {"add": False, "add-2": False}
    bad = definition("kfpsdk", {"pipeline": EXAMPLE, "enableCaching": "sometimes"})
    message = one_line_error(shim.run(SCRIPT, bad, pythonpath=[EXAMPLE_PIPELINES])[0])
    assert 'framework.parameters.enableCaching must be true or false (got "sometimes")' in message


def test_the_compile_time_env_is_exported_before_the_module_is_imported(shim):
    env = [{"name": "GREETING", "value": "hello from env"}]
    process, ir = shim.run(
        SCRIPT, definition("kfpsdk", {"pipeline": "sample_pipelines.env_pipeline"}, env=env), pythonpath=[FIXTURES]
    )
    assert process.returncode == 0, process.stderr
    assert ir["pipelineInfo"]["description"] == "greeting=hello from env"
    assert ir["pipelineInfo"]["name"] == "team-a-add-pipeline"


def test_the_output_is_json_whatever_the_file_is_called(shim, tmp_path):
    process, ir = shim.run(SCRIPT, definition("kfpsdk", {"pipeline": EXAMPLE}), pythonpath=[EXAMPLE_PIPELINES])
    assert process.returncode == 0 and isinstance(ir, dict)
    assert json.loads(json.dumps(ir)) == ir


def test_missing_keys_are_named(shim):
    message = one_line_error(shim.run(SCRIPT, definition("kfpsdk", {}))[0])
    assert "has no framework.parameters.pipeline: set it to the pipeline function as module.function" in message
    no_image = definition("kfpsdk", {"pipeline": EXAMPLE}, image="")
    assert "has no image: it must be a non-empty string" in one_line_error(shim.run(SCRIPT, no_image)[0])
    no_name = definition("kfpsdk", {"pipeline": EXAMPLE})
    del no_name["name"]
    assert "has no name: it must be a non-empty string (got nothing)" in one_line_error(shim.run(SCRIPT, no_name)[0])


def test_bad_references_are_named(shim):
    run = lambda pipeline: one_line_error(
        shim.run(SCRIPT, definition("kfpsdk", {"pipeline": pipeline}), pythonpath=[FIXTURES])[0]
    )
    assert run("add_pipeline") == (
        'framework.parameters.pipeline is "add_pipeline": it must name a function as module.function, '
        "e.g. getting_started.pipeline.add_pipeline"
    )
    assert run("missing_module.add_pipeline") == (
        'cannot import module "missing_module" named by framework.parameters.pipeline ("missing_module.add_pipeline"): '
        "ModuleNotFoundError: No module named 'missing_module'"
    )
    assert run("broken_module.pipeline").endswith("ValueError: the training data path is not configured")
    assert run("sample_pipelines.missing") == (
        'module "sample_pipelines" has no "missing" (framework.parameters.pipeline is "sample_pipelines.missing")'
    )
    assert run("sample_pipelines.not_a_pipeline") == (
        "framework.parameters.pipeline is 'sample_pipelines.not_a_pipeline', which is not a KFP pipeline: "
        "decorate the function with @dsl.pipeline (got function)"
    )


def test_a_config_that_is_not_json_fails_in_one_line(shim):
    assert "is not JSON" in one_line_error(shim.run(SCRIPT, "{oops")[0])


def test_the_stub_and_kfpsdk_shims_take_the_same_flags(shim):
    process, compiled = shim.run(ROOT / "compilers" / "stub" / "compile.sh", definition("stub", {}))
    assert process.returncode == 0 and compiled == {"foo": "bar"}
