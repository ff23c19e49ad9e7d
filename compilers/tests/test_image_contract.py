"""The framework image contract (compilers/README.md, "Images"): `/entrypoint.sh <dir>` copies /compiler/* into <dir>,
and the pipeline image runs <dir>/compile.sh from there. `compilers/assemble.sh` lays out /compiler as the Dockerfiles
do."""

import subprocess

import pytest

from conftest import COMPILERS, EXAMPLE_PIPELINES, definition, one_line_error


def assemble(framework, dest):
    subprocess.run(["sh", str(COMPILERS / "assemble.sh"), framework, str(dest)], check=True, capture_output=True)


@pytest.mark.parametrize("framework", ["kfpsdk", "tfx"])
def test_entrypoint_copies_the_compiler_into_the_shared_folder(tmp_path, framework):
    image = tmp_path / "image"
    assemble(framework, image)
    assert sorted(p.name for p in (image / "compiler").iterdir()) == ["compile.sh", "compile_shim.py", "compiler"]
    shared = tmp_path / "shared"
    result = subprocess.run(
        [str(image / "entrypoint.sh"), str(shared)], env={"COMPILER_DIR": str(image / "compiler"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (shared / "compile.sh").is_file() and (shared / "compiler" / "__main__.py").is_file()
    assert (shared / "compile_shim.py").is_file()


def test_the_copied_kfpsdk_compiler_compiles_with_only_the_shared_folder(tmp_path, shim):
    image = tmp_path / "image"
    assemble("kfpsdk", image)
    shared = tmp_path / "shared"
    subprocess.run([str(image / "entrypoint.sh"), str(shared)], env={"COMPILER_DIR": str(image / "compiler")}, check=True)
    process, ir = shim.run(
        shared / "compile.sh",
        definition("kfpsdk", {"pipeline": "getting_started.pipeline.add_pipeline"}),
        pythonpath=[EXAMPLE_PIPELINES],
    )
    assert process.returncode == 0, process.stderr
    assert ir["pipelineInfo"]["name"] == "team-a-add-pipeline"


def test_the_entrypoint_needs_a_folder_and_a_compiler(tmp_path):
    entrypoint = COMPILERS / "shim" / "entrypoint.sh"
    usage = subprocess.run([str(entrypoint)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    empty = subprocess.run(
        [str(entrypoint), str(tmp_path / "shared")], env={"COMPILER_DIR": str(tmp_path / "none")},
        capture_output=True, text=True,
    )
    assert empty.returncode == 1
    assert "no compiler at {}".format(tmp_path / "none") in empty.stderr


def test_assemble_refuses_unknown_frameworks(tmp_path):
    result = subprocess.run(["sh", str(COMPILERS / "assemble.sh"), "pytorch", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown framework pytorch" in result.stderr
