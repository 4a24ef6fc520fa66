"""The map of the code holds: the root of `project/` has only commands, each a thin entry with a complete
`--help`, and nothing in the library imports a command."""

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent / "project"
COMMANDS = sorted(path.stem for path in PROJECT.glob("*.py") if path.stem != "__init__")
LIBRARY = sorted(path for path in PROJECT.glob("*/**/*.py"))
# The commands that run or build a fit from a config.
FIT_COMMANDS = ("fit", "cv", "sweep", "schedule", "lr_find", "distill")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda path: str(path.relative_to(PROJECT)))
def test_no_library_module_imports_a_command(path):
    commands = {f"project.{name}" for name in COMMANDS}
    assert not imported_modules(path) & commands


@pytest.mark.parametrize("name", COMMANDS)
def test_every_root_module_is_a_short_command_with_a_main(name):
    source = (PROJECT / f"{name}.py").read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":' in source and callable(importlib.import_module(f"project.{name}").main)
    assert len(source.splitlines()) <= 80  # an entry point, not a home for logic


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_every_commands_help_lists_all_its_options(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"project.{name}").main(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage:")
    # Options a command adds to a fit's own (the ones argparse with add_help=False used to hide).
    own = {"schedule": ["--out"], "lr_find": ["--out", "--num_training"], "sweep": ["--space", "--study", "--out"],
           "cv": ["--folds", "--group_column", "--out"],
           "distill": ["--teacher", "--alpha", "--temperature", "--unlabelled_file", "--pseudo_threshold"]}  # fmt: skip
    for option in own.get(name, []):
        assert option in shown
    if name in own:  # and every fit option beside them
        assert "--model.pooling_options" in shown and "--data.train_file" in shown


def test_a_command_parses_its_own_options_apart_from_the_fits():
    from project.cv import CrossValidationCLI
    from project.sweep import SweepCLI

    config, own = SweepCLI.parse(["--space", "s.yaml", "--model.pooling", "cls", "--out=o", "--sampler_seed", "3"])
    assert (str(own.space), str(own.out), own.study, own.sampler_seed) == ("s.yaml", "o", None, 3)
    assert config.model.pooling == "cls" and not {"space", "out", "study", "sampler_seed"} & set(vars(config))
    config, own = CrossValidationCLI.parse(["--folds", "3", "--group_column", "g", "--data.batch_size", "8"])
    assert (own.folds, own.group_column, str(own.out)) == (3, "g", "runs/cv") and config.data.batch_size == 8
    assert not {"folds", "out", "group_column"} & set(vars(config))


FIT_CALLERS = [*sorted((PROJECT / "tuning").glob("*.py")), *(PROJECT / f"{name}.py" for name in FIT_COMMANDS)]


@pytest.mark.parametrize("path", FIT_CALLERS, ids=lambda path: path.name)
def test_the_fit_is_reentered_through_a_config_never_through_command_line_strings(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert not [text for text in strings if text.startswith("--") and "." in text.split()[0]]  # `--model.x` tokens
    assert "sys.argv" not in ast.unparse(tree)


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the `project` package and contract under `root`, as .ci/run calls it."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(PROJECT, root / "project", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT.parent / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_layer_contract_holds(project_copy):
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module, upward",
    [
        ("model/pooling.py", "project.training.module"),  # the lowest library layer reaching the module
        ("tasks/base.py", "project.evaluation.report"),
        ("training/job.py", "project.tuning.sweeps"),
        ("core/errors.py", "project.fit"),  # the library reaching a command
    ],
)
def test_an_upward_import_breaks_the_contract_even_inside_a_function(project_copy, module, upward):
    path = project_copy / "project" / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n\ndef _sneaky():\n    import {upward}  # noqa\n", encoding="utf-8")
        result = lint_imports(project_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and upward in result.stdout


def test_a_package_outside_the_contract_breaks_it(project_copy):
    """A new folder must be given its place in the layers (the contract is exhaustive)."""
    package = project_copy / "project" / "newroom"
    package.mkdir()
    (package / "__init__.py").write_text("")
    try:
        result = lint_imports(project_copy)
    finally:
        shutil.rmtree(package)
    assert result.returncode != 0 and "newroom" in result.stdout + result.stderr


def test_the_architecture_page_states_the_contracts_layers():
    import tomllib

    config = tomllib.loads((PROJECT.parent / "pyproject.toml").read_text(encoding="utf-8"))
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    page = (PROJECT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in layers[1:]:  # the commands are named as "commands" on the page
        assert f"`{layer}`" in page, f"docs/architecture.md does not name the layer {layer}"


def test_tests_mirror_the_package():
    """docs/testing.md's rule: tests/<package>/ for project/<package>/, tests/bench/ for bench/, and at the root only
    the tests no single package owns."""
    tests = Path(__file__).resolve().parent
    packages = {path.name for path in PROJECT.iterdir() if (path / "__init__.py").exists()}
    folders = {path.name for path in tests.iterdir() if (path / "__init__.py").exists()}
    assert folders <= packages | {"bench"}, sorted(folders - packages - {"bench"})
    at_root = {path.name for path in tests.glob("test_*.py")}
    assert at_root == {"test_bad_input.py", "test_extending.py", "test_fit_end_to_end.py", "test_layout.py",
                       "test_notebook.py"}  # fmt: skip
