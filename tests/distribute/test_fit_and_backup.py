"""`ke.distribute.fit`, `BackupAndRestore` and `shard_dataset` in one process."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke
from keras_efficient import testing
from keras_efficient.distribute.multi_worker import patch_keras_for_multi_worker

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-1.0], [2.0]], "float32")).astype("float32")
DATASET = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)  # 6 batches


def _model(strategy=None):
    keras.utils.set_random_seed(0)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


class Crash(keras.callbacks.Callback):
    def __init__(self, after_steps):
        super().__init__()
        self.after_steps, self.seen = after_steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after_steps:
            raise KeyboardInterrupt("simulated preemption")


def _fit(model, callbacks=(), epochs=3):
    return ke.distribute.fit(model, DATASET, epochs=epochs, steps_per_epoch=4,
                             callbacks=list(callbacks), verbose=0)


@pytest.mark.tensorflow_only("ke.distribute.fit is tf.distribute multi-worker training")
@pytest.mark.parametrize("crash_after", [3, 9])  # mid-epoch in the first and a later epoch
def test_fit__resumes_at_the_exact_step(tmp_path, crash_after):
    uninterrupted = _model()
    history = _fit(uninterrupted)
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3

    backup = ke.callbacks.BackupAndRestore(tmp_path, save_freq=1)
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [Crash(crash_after), backup])
    resumed = _model()
    history = _fit(resumed, [ke.callbacks.BackupAndRestore(tmp_path, save_freq=1)])
    testing.harness._assert_close(resumed.weights, uninterrupted.weights, 1e-6,
                                  "weights after resuming")
    assert history.epoch[-1] == 2
    assert not (tmp_path / "position.json").exists()


@pytest.mark.tensorflow_only("ke.distribute.fit is tf.distribute multi-worker training")
def test_fit__stream_continues_across_epochs():
    # 6 batches, 4 steps an epoch: epoch 1 starts at batch 4, as with model.fit
    # on the repeated dataset.
    reference = _model()
    reference.fit(DATASET.repeat(), epochs=2, steps_per_epoch=4, verbose=0, shuffle=False)
    model = _model()
    _fit(model, epochs=2)
    testing.harness._assert_close(model.weights, reference.weights, 1e-6, "weights")


@pytest.mark.tensorflow_only("ke.distribute.fit is tf.distribute multi-worker training")
def test_fit__two_replicas_equal_one_device():
    # With the multi-worker fix installed, other strategies behave as before.
    patch_keras_for_multi_worker()
    single = _model()
    _fit(single)
    replicated = _model(testing.two_replica_strategy())
    _fit(replicated)
    testing.harness._assert_close(replicated.weights, single.weights, 1e-5, "weights")


def test_backup__plain_fit_resumes_at_epoch_boundaries(tmp_path):
    uninterrupted = _model()
    uninterrupted.fit(DATASET, epochs=3, verbose=0, shuffle=False)
    first = _model()
    first.fit(DATASET, epochs=2, verbose=0, shuffle=False,
              callbacks=[ke.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    second = _model()
    history = second.fit(DATASET, epochs=3, verbose=0, shuffle=False,
                         callbacks=[ke.callbacks.BackupAndRestore(tmp_path)])
    assert history.epoch == [2]
    testing.harness._assert_close(second.weights, uninterrupted.weights, 1e-6, "weights")


def test_backup__plain_fit_refuses_a_mid_epoch_backup(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _model().fit(DATASET, epochs=2, verbose=0, shuffle=False,
                     callbacks=[Crash(3), ke.callbacks.BackupAndRestore(tmp_path, save_freq=2)])
    with pytest.raises(ValueError, match="middle of epoch 0.*ke.distribute.fit"):
        _model().fit(DATASET, epochs=2, verbose=0, shuffle=False,
                     callbacks=[ke.callbacks.BackupAndRestore(tmp_path, save_freq=2)])


@pytest.mark.parametrize("save_freq", [0, "batch", 1.5, True])
def test_backup__bad_save_freq_raises(tmp_path, save_freq):
    with pytest.raises(ValueError, match="argument `save_freq`"):
        ke.callbacks.BackupAndRestore(tmp_path, save_freq=save_freq)


def test_backup__config_round_trip(tmp_path):
    backup = ke.callbacks.BackupAndRestore(str(tmp_path), save_freq=3, delete_checkpoint=False)
    clone = ke.callbacks.BackupAndRestore.from_config(backup.get_config())
    assert clone.get_config() == backup.get_config()


@pytest.mark.tensorflow_only("ke.distribute.fit is tf.distribute multi-worker training")
def test_fit__argument_errors():
    model = _model()
    with pytest.raises(TypeError, match="argument `dataset`"):
        ke.distribute.fit(model, (X, Y))
    with pytest.raises(ValueError, match="`steps_per_epoch` is required"):
        ke.distribute.fit(model, DATASET.repeat())
    with pytest.raises(TypeError, match="`initial_epoch` is set by ke.distribute.fit"):
        ke.distribute.fit(model, DATASET, initial_epoch=1)
    with pytest.raises(ValueError, match="argument `shard_policy`"):
        ke.distribute.fit(model, DATASET, shard_policy="rows")


def test_shard_dataset__policies_and_errors(tmp_path):
    sharded = ke.distribute.shard_dataset(DATASET, "data")
    assert (sharded.options().experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.DATA)
    with pytest.raises(ValueError, match="'file' shards the files.*reads none"):
        ke.distribute.shard_dataset(DATASET, "file")
    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"x")
    files = tf.data.TFRecordDataset([path]).batch(1)
    assert (ke.distribute.shard_dataset(files, "file").options().experimental_distribute
            .auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE)
    with pytest.raises(ValueError, match="argument `policy`"):
        ke.distribute.shard_dataset(DATASET, "rows")
    with pytest.raises(TypeError, match="argument `dataset`"):
        ke.distribute.shard_dataset((X, Y), "data")


def test_task_info_and_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert ke.distribute.task_info() == ("worker", 0, 1) and ke.distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    assert ke.distribute.task_info() == ("worker", 0, 2) and not ke.distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", '["a:1"]')
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        ke.distribute.task_info()


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="the JAX backend's error")
def test_fit__on_jax_names_keras_distribution():
    with pytest.raises(RuntimeError, match=r"keras.distribution.initialize\(\).*get_distribution"):
        ke.distribute.fit(None, None)
    with pytest.raises(RuntimeError, match="patch_keras_for_multi_worker"):
        patch_keras_for_multi_worker()
