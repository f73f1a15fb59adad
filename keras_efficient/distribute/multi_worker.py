"""Make Keras 3's `model.fit` work under `MultiWorkerMirroredStrategy`.

Keras 3.15's TensorFlow trainer fails under `MultiWorkerMirroredStrategy` with
"Attempt to convert a value (PerReplica...) to a Tensor", from two defects:

1. `_maybe_symbolic_build` takes a sample batch for the symbolic build by
   cross-replica *averaging* the first distributed batch with
   `strategy.reduce("MEAN", ...)`; the collective reduce cannot run on a
   `PerReplica` of a multi-worker strategy outside `strategy.run`. Only the
   batch's structure and shapes matter for a build, so one local replica's
   batch is used instead.
2. `reduce_per_replica` reduces the per-step logs of a multi-worker strategy
   with `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar
   logs (loss, metric results). Scalars are reduced with `axis=None` (the
   mean over replicas), everything else as before.

`patch_keras_for_multi_worker()` installs both fixes, once; `get_strategy`
calls it whenever it builds a `MultiWorkerMirroredStrategy`. Other strategies
behave exactly as before: the first fix returns a batch of the same structure
and shapes, and the second applies to multi-worker strategies only.
"""

import json
import os

import keras
import tensorflow as tf

from keras_efficient.backend import keras_compat
from keras_efficient.utils import export


def _local_value(value, strategy):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Same contract as Keras's TensorFlowTrainer._maybe_symbolic_build, but the
    # sample batch is one replica's local batch instead of a cross-replica mean.
    if keras_compat.distribute_strategy_or_none(self) is None:
        return
    if iterator is not None:
        for _, _, epoch_iterator in iterator:
            batch = next(epoch_iterator)
            data_batch = keras.tree.map_structure(
                lambda value: _local_value(value, self.distribute_strategy), batch)
            break
    with self.distribute_strategy.scope():
        keras_compat.symbolic_build(self, data_batch)


def _reduce_per_replica(values, strategy, reduction):
    if reduction in ("auto", "mean") and keras_compat.is_multi_worker(strategy):
        def reduce(value):
            rank = _local_value(value, strategy).shape.rank
            return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)

        return keras.tree.map_structure(reduce, values)
    return keras_compat.ORIGINAL_REDUCE_PER_REPLICA(values, strategy, reduction)


def require_tensorflow(what):
    """Raise a `RuntimeError` naming JAX's alternative unless the backend is TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} is multi-worker training with `tf.distribute` (TensorFlow backend). "
            f"On the {keras.backend.backend()} backend use Keras's own: "
            "`keras.distribution.initialize()` on every host, "
            "`keras.distribution.set_distribution(ke.distribute.get_distribution())`, "
            "then `model.fit` with `keras.callbacks.BackupAndRestore`."
        )


def patch_keras_for_multi_worker():
    """Install the two fixes above into Keras's TensorFlow trainer (idempotent)."""
    require_tensorflow("`patch_keras_for_multi_worker`")
    keras_compat.patch_tensorflow_trainer(_maybe_symbolic_build, _reduce_per_replica)


def _tf_config():
    """TF_CONFIG as a dict ({} when unset), or a `ValueError` saying what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON with a 'cluster' entry: {error}") from error
    if not isinstance(config, dict):  # a bad environment value, not an argument's type
        raise ValueError(  # noqa: TRY004
            f"TF_CONFIG is not valid JSON with a 'cluster' entry: {raw!r}")
    return config


def _workers(config):
    cluster = config.get("cluster", {})
    return list(cluster.get("chief", [])) + list(cluster.get("worker", []))


def cluster_workers():
    """The worker addresses in TF_CONFIG (chief included), or [] when unset."""
    return _workers(_tf_config())


@export("keras_efficient.distribute.task_info")
def task_info():
    """`(task_type, task_index, num_workers)` from TF_CONFIG; `("worker", 0, 1)` without."""
    config = _tf_config()
    task = config.get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0)), max(len(_workers(config)), 1)


@export("keras_efficient.distribute.is_chief")
def is_chief():
    """Whether this process is the chief: the `chief` task, or worker 0 without one."""
    task_type, task_index, _ = task_info()
    has_chief = bool(_tf_config().get("cluster", {}).get("chief"))
    return task_type == "chief" or (task_type == "worker" and task_index == 0 and not has_chief)
