"""YAML experiment configs: defaults, and errors that name the key and the file."""

import pathlib

import pytest

from keras_efficient import config

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "tpu_configs"


def _write(tmp_path, text):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def test_load__fills_defaults(tmp_path):
    loaded = config.load(_write(tmp_path, "trainer:\n  epochs: 3\n"))
    assert loaded.trainer["epochs"] == 3
    assert loaded.trainer["batch_size"] == config.SCHEMA["trainer"]["batch_size"].default
    assert loaded.runtime["strategy"] == "auto" and loaded.task["technique"] == "baseline"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_load__every_shipped_config_is_valid(path):
    assert isinstance(config.load(path), config.ExperimentConfig)


def test_load__unknown_key_names_key_and_file(tmp_path):
    path = _write(tmp_path, "trainer:\n  epocs: 3\n")
    with pytest.raises(config.ConfigError, match=r"experiment\.yaml.*`trainer\.epocs`"):
        config.load(path)


def test_load__unknown_block_names_it(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown key `model`"):
        config.load(_write(tmp_path, "model: {}\n"))


@pytest.mark.parametrize(
    "text, key",
    [
        ("trainer:\n  epochs: ten\n", "trainer.epochs"),
        ("trainer:\n  epochs: true\n", "trainer.epochs"),  # a YAML bool is not an int
        ("trainer:\n  learning_rate: '1e-3'\n", "trainer.learning_rate"),
        ("runtime:\n  strategy: nccl\n", "runtime.strategy"),
        ("runtime:\n  jit_compile: sometimes\n", "runtime.jit_compile"),
        ("runtime:\n  steps_per_execution: 0\n", "runtime.steps_per_execution"),
        ("trainer:\n  seeds: []\n", "trainer.seeds"),
        ("task:\n  params: [1, 2]\n", "task.params"),
        ("task: 3\n", "task"),
    ],
)
def test_load__wrong_value_names_key_and_file(tmp_path, text, key):
    with pytest.raises(config.ConfigError, match=rf"experiment\.yaml.*`{key}`"):
        config.load(_write(tmp_path, text))


def test_load__config_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        config.load(_write(tmp_path, "[1, 2]\n"))


def test_load__invalid_yaml_names_file(tmp_path):
    with pytest.raises(config.ConfigError, match=r"experiment\.yaml: not valid YAML"):
        config.load(_write(tmp_path, "trainer: [\n"))
