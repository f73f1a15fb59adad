"""`keras-efficient demo --list` and `bench --list` from a wheel installed in a fresh
virtualenv, run outside the source tree: the demo and the benchmarks ship."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import keras_efficient_cli

ROOT = pathlib.Path(keras_efficient_cli.__file__).parent


def _run(*command, cwd):
    # No PYTHONPATH: the installed wheel, not this checkout, must answer.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.tensorflow_only("one packaging check is enough (about 15 s)")
def test_wheel__installed_in_a_fresh_virtualenv_lists_the_demo_and_the_benchmarks(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "demo_report",
        "bench_results"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", tmp_path / "wheels", source, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    assert "keras_efficient/bench/gpu.sh" in zipfile.ZipFile(wheel).namelist()
    # The system's packages (TensorFlow, Keras) without downloading them again.
    _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
         tmp_path / "venv", cwd=tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    _run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "-q",
         "--no-deps", "--no-compile", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    origin = _run(bin_dir / "python", "-c", "import importlib.util; print(importlib.util."
                  "find_spec('keras_efficient').origin)", cwd=elsewhere)
    assert origin.startswith(str(tmp_path / "venv")), origin
    for command, folder in (("demo", "demo/experiments"), ("bench", "bench/benchmarks")):
        listed = _run(bin_dir / "keras-efficient", command, "--list", cwd=elsewhere)
        names = [line.split(":", 1)[0] for line in listed.splitlines()]
        assert names == list(keras_efficient_cli.catalog(folder)), listed
