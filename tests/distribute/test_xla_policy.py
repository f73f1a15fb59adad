"""The explicit XLA policy and `describe()`."""

import types

import keras
import pytest

from keras_efficient import distribute
from keras_efficient.cli import main
from keras_efficient.distribute import settings as settings_module
from keras_efficient.distribute import xla


def _fake_strategy(*devices):
    return types.SimpleNamespace(extended=types.SimpleNamespace(worker_devices=devices))


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(xla.JIT_ENVIRONMENT_VARIABLE, raising=False)


def test_jit_compile_for__cpu_is_off_gpu_and_tpu_on():
    assert distribute.jit_compile_for() is False
    assert distribute.jit_compile_for(_fake_strategy("/job:worker/device:CPU:0")) is False
    gpus = _fake_strategy("/job:worker/replica:0/task:0/device:GPU:0", "/device:GPU:1")
    assert distribute.jit_compile_for(gpus) is True
    assert xla.jit_compile_for_device("TPU") is True


@pytest.mark.parametrize("value, expected", [("1", True), ("on", True), ("False", False)])
def test_jit_compile_for__environment_overrides(monkeypatch, value, expected):
    monkeypatch.setenv(xla.JIT_ENVIRONMENT_VARIABLE, value)
    assert distribute.jit_compile_for() is expected
    assert xla.jit_compile_for_device("GPU") is expected


def test_jit_compile_for__bad_environment_value_raises(monkeypatch):
    monkeypatch.setenv(xla.JIT_ENVIRONMENT_VARIABLE, "maybe")
    with pytest.raises(ValueError, match="KERAS_EFFICIENT_JIT_COMPILE.*'maybe'"):
        distribute.jit_compile_for()


def test_jit_compile_for_device__unknown_device_raises():
    with pytest.raises(ValueError, match="argument `device_type`"):
        xla.jit_compile_for_device("NPU")


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend's description")
def test_describe__on_jax_reports_data_parallel_over_its_devices():
    description = distribute.describe()
    assert description["backend"] == "jax"
    assert description["strategy"]["kind"] == "data_parallel"
    assert "get_distribution()" in description["strategy"]["reason"]
    assert len(description["devices"]) == 2 and all("CPU" in d for d in description["devices"])
    assert description["versions"]["jax"] != "not installed"


@pytest.mark.tensorflow_only("the tf.distribute strategy choice")
def test_describe__reports_backend_versions_devices_strategy_xla():
    description = distribute.describe()
    assert description["backend"] == "tensorflow"
    assert description["versions"]["tensorflow"].startswith("2.21")
    assert any("CPU" in device for device in description["devices"])
    assert description["strategy"]["kind"] == "default"
    assert description["jit_compile"] is False
    assert description["dtype_policy"] == "float32"


def test_info_command__prints_every_field(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    for field in ("backend", "tensorflow", "keras", "devices", "strategy", "jit_compile",
                  "dtype policy"):
        assert field in printed


class _FakeTPUStrategy:
    num_replicas_in_sync = 8


def test_recommended_settings__tpu(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.distribute, "TPUStrategy", _FakeTPUStrategy)
    settings = distribute.recommended_settings(_FakeTPUStrategy())
    assert settings == settings_module.TrainingSettings(
        device_type="TPU", jit_compile=True, steps_per_execution=32,
        dtype_policy="mixed_bfloat16", drop_remainder=True, num_replicas=8)
    assert settings.check_batch_size(256) == 256
    with pytest.raises(ValueError, match="multiple of the 8 replicas.*batch_size=100"):
        settings.check_batch_size(100)
    with pytest.raises(ValueError, match="argument `batch_size`.*>= 1"):
        settings.check_batch_size(0)
    with pytest.raises(TypeError, match="argument `batch_size`"):
        settings.check_batch_size("256")


@pytest.mark.tensorflow_only("settings read from a tf.distribute strategy")
def test_recommended_settings__cpu_and_two_replicas():
    from keras_efficient import testing

    settings = distribute.recommended_settings()
    assert (settings.device_type, settings.jit_compile, settings.drop_remainder) == (
        "CPU", False, False)
    assert distribute.recommended_settings(testing.two_replica_strategy()).num_replicas == 2


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's keras.distribution")
def test_recommended_settings__jax_data_parallel_over_two_devices():
    settings = distribute.recommended_settings(distribute.get_distribution())
    # The notebooks' TPU path: one jitted step over both devices' shares of the batch.
    assert settings == settings_module.TrainingSettings(
        device_type="CPU", jit_compile=True, steps_per_execution=1,
        dtype_policy="float32", drop_remainder=True, num_replicas=2)
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        settings.check_batch_size(63)


def test_run_command__batch_not_divisible_by_replicas_names_key(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("runtime: {strategy: mirrored}\ntrainer: {batch_size: 63}\n")
    with pytest.raises(ValueError, match=r"c\.yaml: key `trainer\.batch_size`.*2 replicas"):
        main(["run", str(config)])
