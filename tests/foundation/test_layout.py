"""The demo and the benchmarks are laid out alike: one module per experiment or
benchmark (or per family), listed in the folder's `MODULES`, and listed by the
command line without TensorFlow."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

import keras_efficient
import keras_efficient_cli
from keras_efficient.bench import benchmarks
from keras_efficient.bench.base import discover
from keras_efficient.demo import experiments
from keras_efficient.demo.base import registered_experiments

PACKAGE = pathlib.Path(keras_efficient.__file__).parent


def _module_files(package):
    return sorted(path.stem for path in pathlib.Path(package.__file__).parent.glob("*.py")
                  if path.stem != "__init__")


def _registering_module(function):
    return function.__module__.rsplit(".", 1)[1]


def _check_names(modules):
    # Named after what it registers, or after the family: its names start with the
    # module's name, or all measure the technique folder the module is named after.
    for module, names in modules.items():
        family = all(name.startswith(module) for name in names)
        technique_folder = len(names) > 1 and (PACKAGE / module).is_dir()
        assert family or technique_folder, (module, names)


def test_demo_experiments__modules_register_what_their_table_says():
    assert sorted(experiments.MODULES) == _module_files(experiments)
    registered = registered_experiments()
    assert list(registered) == [name for names in experiments.MODULES.values()
                                for name in names]
    for module, names in experiments.MODULES.items():
        for name in names:
            experiment = registered[name]
            assert _registering_module(experiment.variants[experiment.baseline]) == module
    _check_names(experiments.MODULES)
    assert experiments.STUDIES == tuple(name for name, experiment in registered.items()
                                        if experiment.full_only)


def test_bench_benchmarks__modules_define_what_their_table_says():
    assert sorted(benchmarks.MODULES) == _module_files(benchmarks)
    found = discover()
    assert list(found) == [name for names in benchmarks.MODULES.values() for name in names]
    for module, names in benchmarks.MODULES.items():
        for name in names:
            assert _registering_module(found[name].cases[0].setup) == module
    _check_names(benchmarks.MODULES)


def test_bench_benchmarks__import_no_experiment_module():
    for module in benchmarks.MODULES:
        tree = ast.parse((PACKAGE / "bench" / "benchmarks" / f"{module}.py").read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.startswith(experiments.__name__)], module


@pytest.mark.parametrize("folder, registered", [
    ("demo/experiments", registered_experiments), ("bench/benchmarks", discover)])
def test_catalog__lists_every_registered_name(folder, registered):
    assert list(keras_efficient_cli.catalog(folder)) == list(registered())


_NO_TENSORFLOW = """
import contextlib, io, os, sys
from keras_efficient_cli import main
for argv in (["--help"], ["demo", "--help"], ["demo", "--list"], ["bench", "--list"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(sorted(name for name in ("tensorflow", "keras", "jax") if name in sys.modules),
      os.environ["TF_CPP_MIN_LOG_LEVEL"])
"""


@pytest.mark.parametrize("user_level, level", [(None, "2"), ("0", "0")])
def test_cli__help_and_list_import_no_tensorflow_and_keep_the_users_log_level(user_level,
                                                                              level):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    result = subprocess.run([sys.executable, "-c", _NO_TENSORFLOW], capture_output=True,
                            text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", level]


def test_native_stderr_silenced__discards_the_block_then_restores(capfd):
    with keras_efficient_cli.native_stderr_silenced():
        os.write(2, b"oneDNN custom operations are on\n")
    os.write(2, b"kept\n")
    assert capfd.readouterr().err == "kept\n"
