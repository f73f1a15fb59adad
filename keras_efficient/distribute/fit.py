"""`ke.distribute.fit`: `model.fit` for several workers, with exact resumption."""

import keras
import tensorflow as tf

from keras_efficient.distribute.backup import BackupAndRestore
from keras_efficient.distribute.multi_worker import is_chief
from keras_efficient.distribute.multi_worker import patch_keras_for_multi_worker
from keras_efficient.distribute.multi_worker import require_tensorflow
from keras_efficient.distribute.sharding import SHARD_POLICIES
from keras_efficient.distribute.sharding import shard_dataset
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_size


def _stream(dataset, start, num_batches):
    # The run's data is `dataset` repeated: epoch e trains on batches
    # [e * steps_per_epoch, (e + 1) * steps_per_epoch) of it.
    return dataset.repeat().skip(start % num_batches if num_batches > 0 else start)


def _merge(histories):
    epochs = [epoch for history in histories for epoch in history.epoch]
    logs = {}
    for history in histories:
        for key, values in history.history.items():
            logs.setdefault(key, []).extend(values)
    merged = histories[-1]
    merged.epoch, merged.history = epochs, logs
    return merged


@export("keras_efficient.distribute.fit")
def fit(
    model,
    dataset,
    *,
    epochs=1,
    steps_per_epoch=None,
    callbacks=None,
    verbose="auto",
    shard_policy="auto",
    **fit_kwargs,
):
    """Train like `model.fit`, on one process or several workers, resumably.

    What it adds to `model.fit`:

    - it runs under `MultiWorkerMirroredStrategy` (installing the fixes of
      `patch_keras_for_multi_worker`);
    - the dataset's sharding between workers is explicit (`shard_policy`),
      with a clear error when the dataset can't be split that way;
    - the progress bar shows on the chief only;
    - with a `ke.callbacks.BackupAndRestore` among the callbacks, a restarted
      run resumes at the exact step of the last backup: it loads weights and
      optimizer state, finishes the interrupted epoch on the batches not yet
      trained, and continues, so every step is applied once and the final
      weights equal an uninterrupted run's.

    The data of the run is `dataset` repeated, epoch `e` taking batches
    `[e * steps_per_epoch, (e + 1) * steps_per_epoch)`. For an exact resume the
    dataset must give the same batches each time it is iterated (shuffle with a
    fixed seed and `reshuffle_each_iteration=False`, or not at all).

    Args:
        model: a compiled Keras model, built under the strategy's scope.
        dataset: a batched `tf.data.Dataset` of global batches.
        epochs: number of epochs.
        steps_per_epoch: steps per epoch; default: the dataset's length (which
            must then be finite and known).
        callbacks: Keras callbacks, `ke.callbacks.BackupAndRestore` included.
            When a run resumes mid-epoch, callbacks see two `fit` calls (the
            rest of the interrupted epoch, then the remaining epochs).
        verbose: as in `model.fit`; forced to 0 on workers other than the chief.
        shard_policy: "auto", "data", "file" or "off" (see `shard_dataset`).
        **fit_kwargs: passed to `model.fit` (e.g. `validation_data`).

    Returns:
        A `keras.callbacks.History` covering the epochs run by this call.

    Example:

    >>> strategy = ke.distribute.get_strategy("multi_worker")
    >>> with strategy.scope():
    ...     model = build_model(); model.compile(...)
    >>> history = ke.distribute.fit(
    ...     model, dataset, epochs=3, steps_per_epoch=100,
    ...     callbacks=[ke.callbacks.BackupAndRestore("/shared/backup", save_freq=20)])
    """
    require_tensorflow("`ke.distribute.fit`")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError("Invalid type received for argument `dataset`. Expected a batched "
                        f"tf.data.Dataset. Received: {type(dataset).__name__}")
    validate_size("epochs", epochs)
    validate_choice("shard_policy", shard_policy, SHARD_POLICIES)
    for reserved in ("initial_epoch", "x", "y", "batch_size", "epochs"):
        if reserved in fit_kwargs:
            raise TypeError(f"`{reserved}` is set by ke.distribute.fit; don't pass it.")
    num_batches = int(dataset.cardinality())
    if steps_per_epoch is None:
        if num_batches < 1:
            raise ValueError(
                "Invalid value received for argument `steps_per_epoch`: the dataset's "
                "length is unknown or infinite, so `steps_per_epoch` is required.")
        steps_per_epoch = num_batches
    validate_size("steps_per_epoch", steps_per_epoch)

    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        patch_keras_for_multi_worker()
    dataset = shard_dataset(dataset, shard_policy)
    if not is_chief():
        verbose = 0
    callbacks = list(callbacks or [])
    backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    epoch, step = 0, 0
    if backup is not None:
        with model.distribute_strategy.scope():
            if not model.built:
                model(next(iter(dataset))[0])
            epoch, step = backup.resume(model, total_epochs=epochs)

    def run(first_epoch, last_epoch, steps, start):
        return model.fit(_stream(dataset, start, num_batches), epochs=last_epoch,
                         initial_epoch=first_epoch, steps_per_epoch=steps,
                         callbacks=callbacks, verbose=verbose, shuffle=False, **fit_kwargs)

    histories = []
    if step:
        # Finish the interrupted epoch on the batches it had not trained on.
        histories.append(run(epoch, epoch + 1, steps_per_epoch - step,
                             epoch * steps_per_epoch + step))
        epoch += 1
    if epoch < epochs:
        histories.append(run(epoch, epochs, steps_per_epoch, epoch * steps_per_epoch))
    if not histories:  # the backup says training had already finished
        history = keras.callbacks.History()
        history.set_model(model)
        return history
    return _merge(histories)
