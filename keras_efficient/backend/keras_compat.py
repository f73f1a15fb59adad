"""Every use of Keras's private API in keras_efficient, in one place.

Keras 3 exports none of what follows; each entry says what the package needs
it for and what to check when Keras changes. The rest of the package imports
it from here, never from `keras.src` and never as a private attribute
(`tests/test_keras_compat.py` fails otherwise), so a Keras upgrade that moves
or renames one of them is fixed in this file alone.

`setup.cfg` bounds Keras to the releases the suite ran on. To widen it, run the
suite on the new release in a throwaway virtualenv (CONTRIBUTING.md, "Keras
versions"): `tests/test_keras_compat.py` first (it checks that every name and
attribute below still exists), then the tests named next to each entry.
"""

import contextlib

import keras
from keras.src.backend import set_keras_mask  # noqa: F401
from keras.src.backend.common.stateless_scope import get_stateless_scope  # noqa: F401
from keras.src.backend.tensorflow import trainer as tensorflow_trainer
from keras.src.layers.preprocessing.data_layer import DataLayer  # noqa: F401
from keras.src.losses.loss import scale_loss_for_distribution  # noqa: F401
from keras.src.losses.loss import unscale_loss_for_distribution  # noqa: F401
from keras.src.utils.backend_utils import DynamicBackend  # noqa: F401
from keras.src.utils.backend_utils import in_tf_graph  # noqa: F401
from keras.src.utils.io_utils import print_msg  # noqa: F401
from keras.src.utils.jax_utils import is_in_jax_tracing_scope  # noqa: F401

# --- Imports of `keras.src`: what each is for, and what to check ----------
#
# `scale_loss_for_distribution`, `unscale_loss_for_distribution`: under a
#   `tf.distribute` strategy Keras divides a compiled loss by the replica count
#   (so summed gradients are the global mean). Models that combine losses
#   themselves (distillers, MAML, the VAE) apply or undo that scaling exactly as
#   Keras does. Check: Keras still scales by `1 / num_replicas_in_sync`
#   (tests/distillation, tests/vae, tests/meta_learning under MirroredStrategy).
# `set_keras_mask`: attaches a mask to a per-token loss so `Loss.__call__`
#   averages over the unmasked tokens only (label smoothing's `ignore_class`).
#   Check: tests/regularization/test_label_smoothing.py.
# `get_stateless_scope`: the variable mapping of the enclosing
#   `keras.StatelessScope`, in which the JAX train step runs a stateful step
#   (`backend/jax.py`). Check: SAM and SSL tests with KERAS_BACKEND=jax.
# `DataLayer`, `DynamicBackend`, `in_tf_graph`, `is_in_jax_tracing_scope`:
#   layers and functions that run TensorFlow ops inside `tf.data` on any
#   backend; `DataLayer.__call__` switches `self.backend` to TensorFlow inside a
#   `tf.data` map (Keras's own `RandomFlip` derives from it) and
#   `backend/data_layer.py` makes the same choice for plain functions. Older
#   Keras 3 releases called `DataLayer` `TFDataLayer`. Check: tests/ssl with
#   KERAS_BACKEND=jax (augmentations inside `tf.data`).
# `print_msg`: Keras's callback logging (prints, or absl-logs when interactive
#   logging is off), so `ke.callbacks.ReduceLROnPlateau` logs as Keras's does.
# `tensorflow_trainer`: Keras's TensorFlow trainer, patched for
#   `MultiWorkerMirroredStrategy` (`distribute/multi_worker.py` says why).
#   Check: the signatures of `TensorFlowTrainer._maybe_symbolic_build` and
#   `reduce_per_replica`, and tests/distribute/test_multi_worker.py.

# --- Private attributes ------------------------------------------------------


def compiled_loss(model):
    """The loss `compile(loss=...)` built (None without one): `model._compile_loss`.

    Called as `compiled_loss(model)(y, y_pred, sample_weight)` by models whose
    own loss includes the compiled one (distiller, MAML). Check: tests/distillation,
    tests/meta_learning/test_meta_maml.py.
    """
    return model._compile_loss


def additional_loss(model, loss):
    """One entry of `model.losses` (a regularizer, `add_loss`), scaled as `fit` scales it.

    Keras's `Trainer._aggregate_additional_loss` casts it and applies the
    distribution scaling. Check: tests/distillation, tests/vae.
    """
    return model._aggregate_additional_loss(loss)


def compute_loss(model, **kwargs):
    """`model._compute_loss`: `compute_loss` with the metrics' `training` argument.

    SAM computes its two passes' losses as `train_step` does. Check: tests/sam.
    """
    return model._compute_loss(**kwargs)


def loss_tracker(model):
    """The `Mean` behind the `loss` entry of `fit`'s logs: `model._loss_tracker`."""
    return model._loss_tracker


def symbolic_build(model, data_batch):
    """Build `model`, its compiled loss and metrics from one batch, as `fit` does first."""
    model._symbolic_build(data_batch=data_batch)


def distribute_strategy_or_none(model):
    """The strategy `model` was created under, None without one (`_distribute_strategy`)."""
    return model._distribute_strategy


def flatten_layers(model):
    """Every layer inside `model`, nested ones included (`Layer._flatten_layers`)."""
    return model._flatten_layers()


def learning_rate_object(optimizer):
    """What was passed as `learning_rate`: a schedule, or the learning-rate variable.

    The public `optimizer.learning_rate` is the schedule's value at the current
    step; `ke.callbacks.ReduceLROnPlateau` needs the schedule itself. Check:
    tests/schedules/test_reduce_lr_on_plateau.py.
    """
    return optimizer._learning_rate


def set_initial_epoch(model, epoch):
    """Make the running `fit` start at `epoch` (what `keras.callbacks.BackupAndRestore` does)."""
    model._initial_epoch = epoch


def seed_generator(layer):
    """A `DataLayer`'s seed generator on the backend its `call` runs on."""
    return layer._get_seed_generator(layer.backend.name)


@contextlib.contextmanager
def unlocked_tracker(layer):
    """Let a built layer create variables that are tracked (and saved), as `quantize` does."""
    tracker = layer._tracker
    was_locked = tracker.locked
    tracker.unlock()
    try:
        yield
    finally:
        if was_locked:
            tracker.lock()


def is_multi_worker(strategy):
    """Whether `strategy` reduces with collectives across workers (Keras's own test)."""
    return tensorflow_trainer._collective_all_reduce_multi_worker(strategy)


def patch_tensorflow_trainer(maybe_symbolic_build, reduce_per_replica):
    """Replace `TensorFlowTrainer._maybe_symbolic_build` and the trainer's `reduce_per_replica`.

    A replacement of `reduce_per_replica` falls back on `ORIGINAL_REDUCE_PER_REPLICA`.
    """
    tensorflow_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tensorflow_trainer.reduce_per_replica = reduce_per_replica


#: Keras's own `reduce_per_replica`, kept before any patch replaces it.
ORIGINAL_REDUCE_PER_REPLICA = tensorflow_trainer.reduce_per_replica


#: Private Keras methods that package classes override, calling Keras's version
#: (`super()`): `(Keras class, method, overriding module)`. Check that each
#: still exists with the same signature (`tests/test_keras_compat.py` checks
#: that it exists).
OVERRIDDEN_METHODS = (
    (keras.Model, "_symbolic_build", "keras_efficient/sam/sharpness_aware_minimization.py"),
    (keras.callbacks.ReduceLROnPlateau, "_reduce_optimizer_lr",
     "keras_efficient/schedules/plateau.py"),
)
