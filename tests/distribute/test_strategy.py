"""Every branch of the strategy factory, with stubbed TPU resolvers and GPU lists."""

import json
import logging

import pytest
import tensorflow as tf

from keras_efficient import distribute
from keras_efficient.distribute import strategy as strategy_module


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("TF_CONFIG",) + strategy_module.TPU_ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _stub_gpus(monkeypatch, count):
    names = [f"/device:GPU:{i}" for i in range(count)]
    monkeypatch.setattr(strategy_module, "_gpus", lambda: names)
    return names


class _Recorder:
    """Stands in for a strategy class and records how it was built."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _tf_config(workers):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}})


def test_get_strategy__unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match=r"argument `kind`.*'auto'.*'tpu'.*Received: kind='nccl'"):
        distribute.get_strategy("nccl")


def test_get_strategy__auto_on_plain_cpu_is_default(caplog):
    with caplog.at_level(logging.INFO, logger="keras_efficient"):
        strategy = distribute.get_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert "default strategy" in caplog.text and "no TPU, GPU or cluster" in caplog.text


def test_get_strategy__auto_with_several_gpus_is_mirrored(monkeypatch):
    names = _stub_gpus(monkeypatch, 2)
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", _Recorder)
    strategy = distribute.get_strategy()
    assert isinstance(strategy, _Recorder) and strategy.kwargs["devices"] == names
    assert distribute.choose_strategy().reason == "2 GPUs on this machine"


def test_get_strategy__auto_with_one_gpu_is_one_device(monkeypatch):
    _stub_gpus(monkeypatch, 1)
    monkeypatch.setattr(tf.distribute, "OneDeviceStrategy", _Recorder)
    strategy = distribute.get_strategy()
    assert strategy.args == ("/device:GPU:0",)


@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy workers")
def test_get_strategy__auto_with_tf_config_workers_is_multi_worker(monkeypatch):
    _stub_gpus(monkeypatch, 2)  # the cluster wins over the local GPUs
    monkeypatch.setenv("TF_CONFIG", _tf_config(["localhost:1", "localhost:2"]))
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", _Recorder)
    assert isinstance(distribute.get_strategy(), _Recorder)
    assert distribute.choose_strategy().devices == ("localhost:1", "localhost:2")


def test_get_strategy__single_worker_tf_config_is_not_multi_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config(["localhost:1"]))
    assert distribute.choose_strategy().kind == "default"


def test_get_strategy__multi_worker_without_tf_config_raises():
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_get_strategy__invalid_tf_config_raises(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.choose_strategy()


def test_get_strategy__gpu_without_gpu_raises():
    with pytest.raises(ValueError, match="sees no GPU"):
        distribute.get_strategy("gpu")


def test_get_strategy__cpu_is_one_device_on_cpu():
    strategy = distribute.get_strategy("cpu")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.extended.worker_devices[0].endswith("CPU:0")


def test_get_strategy__mirrored_without_gpus_uses_logical_cpus():
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))


class _UnreachableResolver:
    def __init__(self, tpu=None):
        raise ValueError(f"no TPU at {tpu!r}")


def _stub_reachable_tpu(monkeypatch):
    calls = []
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver",
                        lambda tpu=None: calls.append(tpu) or f"resolver({tpu})")
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: None)
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: None)
    monkeypatch.setattr(tf.distribute, "TPUStrategy", _Recorder)
    return calls


def test_get_strategy__tpu_unreachable_lists_what_was_tried(monkeypatch):
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", _UnreachableResolver)
    with pytest.raises(RuntimeError, match=r"Could not reach a TPU(.|\n)*tpu='local'"
                                           r"(.|\n)*tpu=None"):
        distribute.get_strategy("tpu")


def test_get_strategy__named_tpu_unreachable_names_it(monkeypatch):
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", _UnreachableResolver)
    with pytest.raises(RuntimeError, match="grpc://10.0.0.2:8470"):
        distribute.get_strategy("tpu", tpu="grpc://10.0.0.2:8470")


def test_get_strategy__auto_with_colab_tpu_connects(monkeypatch):
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    calls = _stub_reachable_tpu(monkeypatch)
    strategy = distribute.get_strategy()
    assert isinstance(strategy, _Recorder)
    assert strategy.args == ("resolver(grpc://10.0.0.2:8470)",)
    assert calls == ["grpc://10.0.0.2:8470"]


def test_get_strategy__auto_on_tpu_vm_tries_local(monkeypatch):
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v3-8")
    calls = _stub_reachable_tpu(monkeypatch)
    distribute.get_strategy()
    assert calls == ["local"]


def test_get_strategy__auto_falls_back_when_tpu_unreachable(monkeypatch, caplog):
    monkeypatch.setenv("KAGGLE_TPU", "1")
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", _UnreachableResolver)
    with caplog.at_level(logging.WARNING, logger="keras_efficient"):
        strategy = distribute.get_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert "Could not reach a TPU" in caplog.text and "Falling back" in caplog.text
