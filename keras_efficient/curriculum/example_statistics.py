"""Per-example training statistics recorded during `fit`, the book's scoring
functions for curriculum learning: the loss averaged over a run, the epoch an
example is first learned, and forgetting events (Toneva et al. 2019)."""

import threading

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.curriculum import _hooks
from keras_efficient.utils import register
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_size

_TABLES = ("loss_sum", "presentations", "last_correct", "forgetting", "first_learned")


@register("keras_efficient.callbacks.ExampleStatistics",
          "keras_efficient.curriculum.ExampleStatistics")
class ExampleStatistics(keras.callbacks.Callback):
    """Records per-example loss, first-learned epoch and forgetting events in `fit`.

    The training data carries example ids: each batch is `(features, y)` where
    `features` is a dict holding the ids (integers in [0, num_examples)) under
    `id_key`. During `fit` the callback takes the ids out before the model
    sees the features (a dict left with one entry is passed as that entry's
    tensor), and after the forward pass scatters, for every example of the
    batch, its loss and whether it was classified correctly into per-example
    tables held in variables on the device. The tables are read only when you
    ask for the statistics, so the cost per step is a few scatters of
    batch-size vectors (measured in `keras_efficient/bench/benchmarks/curriculum.py`).

    Statistics (numpy arrays of length `num_examples`, properties):

    - `presentations`: how often each example was in a training batch.
    - `mean_loss`: its loss averaged over its presentations (NaN if never seen).
    - `first_learned_epoch`: the first epoch (0-based) in which it was
      classified correctly; `inf` if never.
    - `forgetting_events`: how often it went from correctly to wrongly
      classified between two consecutive presentations; `inf` if it was never
      classified correctly (Toneva et al. count unlearned examples as
      forgotten infinitely often).

    Higher is harder for all of them: pass one as `scores` to
    `CurriculumDataset`. Statistics accumulate over `fit` calls until `reset()`.

    TensorFlow backend only (on JAX, construction raises and names
    `teacher_scores`). Under a `tf.distribute` strategy every replica gathers the global batch's
    ids and results and applies the same update, so the tables equal a
    one-device run. Classification only: predictions are the argmax of the
    last axis, labels are sparse or one-hot. An example twice in one batch
    counts as two presentations against the same previous state.

    Args:
        num_examples: N, the number of examples (ids are 0, ..., N - 1).
        loss: the per-example loss: a `keras.losses.Loss`, a loss name or a
            function `(y_true, y_pred) -> per-example loss`. Default: the
            model's compiled loss.
        id_key: the key of the ids in the features dict.

    Example:

    ```python
    stats = ke.callbacks.ExampleStatistics(num_examples=len(x))
    data = tf.data.Dataset.from_tensor_slices(
        ({"inputs": x, "example_id": np.arange(len(x))}, y)).shuffle(len(x)).batch(64)
    model.fit(data, epochs=5, callbacks=[stats])
    curriculum = ke.curriculum.CurriculumDataset(x, y, scores=stats.mean_loss, ...)
    ```

    Reference:
        Toneva et al., "An Empirical Study of Example Forgetting during Deep
        Neural Network Learning", ICLR 2019.
    """

    def __init__(self, num_examples, loss=None, id_key="example_id"):
        super().__init__()
        self.num_examples = validate_size("num_examples", num_examples)
        if not (loss is None or isinstance(loss, str) or callable(loss)):
            raise TypeError("Invalid type received for argument `loss`. Expected a Keras loss, "
                            f"a loss name, a function or None. Received: loss={loss!r}")
        if isinstance(loss, str):
            try:
                keras.losses.get(loss)
            except ValueError:
                raise ValueError("Invalid value received for argument `loss`. Expected a Keras "
                                 f"loss name. Received: loss={loss!r}") from None
        self.loss = loss
        self.id_key = validate_key("id_key", id_key)
        if keras.backend.backend() != "tensorflow":
            # The tables are written from inside the train step, which JAX's
            # stateless step (and its metrics scope) does not allow.
            raise NotImplementedError(
                "ExampleStatistics records statistics during training on the TensorFlow "
                "backend only (KERAS_BACKEND=tensorflow). On the JAX backend, score the "
                "examples after training with `ke.curriculum.teacher_scores(model, x, y)`."
            )
        self._tables = None
        self._epoch = None
        self._function = self._function_key = None
        # The train step hands the batch's ids to `compute_metrics` through the
        # tracing thread (one per replica under MirroredStrategy).
        self._batch_ids = threading.local()

    # ------------------------------------------------------------ statistics

    def reset(self):
        """Forget everything recorded so far."""
        if self._tables is not None:
            for name, variable in self._tables.items():
                variable.assign(self._initial(name))

    @property
    def presentations(self):
        return self._read("presentations")

    @property
    def mean_loss(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._read("loss_sum") / self.presentations

    @property
    def first_learned_epoch(self):
        epochs = self._read("first_learned").astype("float64")
        return np.where(epochs < 0, np.inf, epochs)

    @property
    def forgetting_events(self):
        learned = self._read("first_learned") >= 0
        return np.where(learned, self._read("forgetting").astype("float64"), np.inf)

    def _read(self, name):
        if self._tables is None:
            raise RuntimeError("ExampleStatistics has recorded nothing yet: pass it to "
                               "`model.fit(..., callbacks=[...])` first.")
        return np.asarray(self._tables[name].numpy())

    def _initial(self, name):
        dtype = "float32" if name == "loss_sum" else "int32"
        fill = -1 if name in ("last_correct", "first_learned") else 0
        return np.full(self.num_examples, fill, dtype)

    # ------------------------------------------------------------- callbacks

    def on_train_begin(self, logs=None):
        self._per_example_loss = _per_example_loss(self.loss or self.model.loss)
        if self._tables is None:
            # Every replica computes the same (all-gathered) update;
            # ONLY_FIRST_REPLICA applies it once to the mirrored copies.
            with self.model.distribute_strategy.scope():
                self._tables = {name: self._variable(self._initial(name)) for name in _TABLES}
                self._epoch = self._variable(np.int32(0))
        _hooks.add_hook(self.model, "train_step", self._train_step)
        _hooks.add_hook(self.model, "compute_metrics", self._compute_metrics)
        # A train function traced with the hooks, kept for later fits of the
        # same model and optimizer (a recompile makes a new optimizer).
        key = (id(self.model), id(self.model.optimizer))
        if key != self._function_key:
            self.model.make_train_function(force=True)
            self._function, self._function_key = self.model.train_function, key
        self.model.train_function = self._function

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch.assign(epoch)

    def on_train_end(self, logs=None):
        _hooks.remove_hook(self.model, "train_step", self._train_step)
        _hooks.remove_hook(self.model, "compute_metrics", self._compute_metrics)
        # The next fit traces a train function without our hooks.
        self.model.train_function = None

    @staticmethod
    def _variable(initial):
        return tf.Variable(initial, trainable=False,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    # ---------------------------------------------------------- train hooks

    def _train_step(self, original, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not isinstance(x, dict) or self.id_key not in x:
            raise ValueError(
                f"ExampleStatistics needs the training batches to carry example ids: "
                f"`(features, y)` with `features` a dict holding the ids under "
                f"'{self.id_key}'. Received features: {x!r}")
        features = {key: value for key, value in x.items() if key != self.id_key}
        if len(features) == 1:
            (features,) = features.values()
        self._batch_ids.value = x[self.id_key]
        try:
            return original(keras.utils.pack_x_y_sample_weight(features, y, sample_weight))
        finally:
            self._batch_ids.value = None

    def _compute_metrics(self, original, x, y, y_pred, sample_weight=None, **kwargs):
        ids = getattr(self._batch_ids, "value", None)
        if ids is not None:  # None in evaluation steps
            self._record(ids, y, y_pred)
        return original(x, y, y_pred, sample_weight, **kwargs)

    def _record(self, ids, y, y_pred):
        y_pred = tf.cast(y_pred, "float32")
        losses = tf.cast(self._per_example_loss(y, y_pred), "float32")
        losses = tf.reshape(losses, [tf.shape(y_pred)[0], -1])
        losses = tf.reduce_mean(losses, axis=-1)
        correct = tf.cast(_is_correct(y, y_pred), "int32")
        ids = tf.reshape(tf.cast(ids, "int32"), [-1])
        context = tf.distribute.get_replica_context()
        ids, losses, correct = (context.all_gather(value, axis=0)
                                for value in (ids, losses, correct))
        tables = self._tables
        previous = tf.gather(tables["last_correct"], ids)
        first = tf.gather(tables["first_learned"], ids)
        learned_now = tf.logical_and(correct > 0, first < 0)
        first = tf.where(learned_now, self._epoch.read_value(), first)
        forgotten = tf.cast(tf.logical_and(previous > 0, correct == 0), "int32")
        tables["loss_sum"].scatter_add(tf.IndexedSlices(losses, ids))
        tables["presentations"].scatter_add(tf.IndexedSlices(tf.ones_like(ids), ids))
        tables["forgetting"].scatter_add(tf.IndexedSlices(forgotten, ids))
        tables["last_correct"].scatter_update(tf.IndexedSlices(correct, ids))
        tables["first_learned"].scatter_update(tf.IndexedSlices(first, ids))

    def get_config(self):
        return {"num_examples": self.num_examples,
                "loss": keras.losses.serialize(self.loss) if self.loss is not None else None,
                "id_key": self.id_key}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config["loss"] is not None:
            config["loss"] = keras.losses.deserialize(config["loss"])
        return cls(**config)


def _per_example_loss(loss):
    """A function `(y_true, y_pred) -> per-example loss` from a compiled loss."""
    if isinstance(loss, (list, tuple, dict)):
        raise TypeError("ExampleStatistics supports one loss; for a model with several "
                        f"outputs pass `loss=`. Received: loss={loss!r}")
    loss = keras.losses.get(loss) if isinstance(loss, str) else loss
    # Loss.__call__ reduces over the batch; Loss.call is the per-example value.
    return loss.call if isinstance(loss, keras.losses.Loss) else loss


def _is_correct(y, y_pred):
    predicted = tf.argmax(y_pred, axis=-1, output_type="int32")
    if y.shape.rank == y_pred.shape.rank and y.shape[-1] == y_pred.shape[-1]:
        labels = tf.argmax(y, axis=-1, output_type="int32")  # one-hot
    else:
        labels = tf.reshape(tf.cast(y, "int32"), tf.shape(predicted))
    return tf.equal(predicted, labels)
