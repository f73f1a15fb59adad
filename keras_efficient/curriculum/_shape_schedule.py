"""The mechanism shared by progressive resizing and sequence-length warm-up:
an input size that grows with the training step, applied once in the input
pipeline, with one train function (one trace, static shapes) per size."""

import keras
import tensorflow as tf

from keras_efficient.curriculum import _hooks
from keras_efficient.utils import validate_size


class ShapeSchedule(keras.callbacks.Callback):
    """Base class: a per-step input size, in the pipeline and in the train step.

    `apply(dataset)` repeats the dataset and transforms batch t to the size of
    step t (subclasses: `_sizes(full_size)` gives the size of every scheduled
    step, `_transform(data, size, batched)` changes one batch or example). As a
    callback in the same `fit`, it switches the model, before each step, to the
    train function of that step's size: each distinct size is traced once, with
    its shape pinned static in the trace (`_pin(data, size)`). Functions are
    kept across `fit` calls while the model and its optimizer stay the same.

    Subclasses set `self.full_size` (or leave it None to read it from the
    dataset in `apply`, through `_full_size_of(element_spec)`).
    """

    def __init__(self):
        super().__init__()
        self.sizes = None
        self._functions = {}
        self._functions_key = None

    # ----------------------------------------------------------- pipeline

    def apply(self, dataset, batch_size=None):
        """The training pipeline: `dataset` repeated, each batch at its step's size.

        Args:
            dataset: a `tf.data.Dataset` of batches `(x, y[, sample_weight])`, or,
                with `batch_size`, of single examples (resized or truncated one
                by one, then batched: the way to resize straight from decoded
                images of any size).
            batch_size: batch the examples after transforming them.

        Returns:
            An infinite dataset: pass `steps_per_epoch` to `fit`.
        """
        element_spec = dataset.element_spec
        if self.full_size is None:
            self.full_size = self._full_size_of(element_spec, batched=batch_size is None)
        self.sizes = self._sizes(self.full_size)
        sizes = tf.constant(self.sizes)
        last = len(self.sizes) - 1
        per_example = batch_size is not None
        elements_per_step = 1 if not per_example else validate_size("batch_size", batch_size)

        def transform(index, data):
            step = tf.minimum(index // elements_per_step, last)
            return self._transform(data, sizes[step], batched=not per_example)

        # Batches: one resize per batch is cheap, and a parallel map's teardown at
        # the end of every `fit` (waiting for its in-flight batches) measured
        # ~0.3 s here, a quarter of a 32-step run. Examples (decode + resize each
        # image) keep the parallelism.
        parallel = tf.data.AUTOTUNE if per_example else None
        dataset = dataset.repeat().enumerate().map(transform, num_parallel_calls=parallel)
        if per_example:
            dataset = dataset.batch(batch_size, drop_remainder=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def size_at(self, step):
        """The size used at training step `step` (after `apply`)."""
        if self.sizes is None:
            raise RuntimeError(f"{type(self).__name__}: call `apply(dataset)` first.")
        return tuple(int(v) for v in self.sizes[min(step, len(self.sizes) - 1)])

    # ---------------------------------------------------------- callbacks

    def on_train_begin(self, logs=None):
        if self.sizes is None:
            raise RuntimeError(f"{type(self).__name__}: build the training data with "
                               "`apply(dataset)` before `fit`.")
        if self.model.steps_per_execution != 1:
            raise ValueError(f"{type(self).__name__} switches the train function between "
                             f"steps and needs `steps_per_execution=1`. Received: "
                             f"steps_per_execution={self.model.steps_per_execution}")
        key = (id(self.model), id(self.model.optimizer))
        if key != self._functions_key:
            self._functions, self._functions_key = {}, key
        self._step = 0
        self._active = None
        _hooks.add_hook(self.model, "train_step", self._train_step)

    def on_train_batch_begin(self, batch, logs=None):
        size = self.size_at(self._step)
        if size != self._active:
            self._active = size
            if size not in self._functions:
                # Traced lazily at its first call, with `_active` = size.
                self.model.make_train_function(force=True)
                self._functions[size] = self.model.train_function
            self.model.train_function = self._functions[size]

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1

    def on_train_end(self, logs=None):
        _hooks.remove_hook(self.model, "train_step", self._train_step)
        self.model.train_function = None

    def _train_step(self, original, *args):
        # JAX's step takes `(state, data)` and sees static shapes already (a
        # jitted step is traced per input shape): nothing to pin there.
        if keras.backend.backend() == "jax":
            return original(*args)
        (data,) = args
        return original(self._pin(data, self._active))

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # --------------------------------------------------------- subclasses

    def _sizes(self, full_size):
        raise NotImplementedError

    def _transform(self, data, size, batched):
        raise NotImplementedError

    def _pin(self, data, size):
        raise NotImplementedError

    def _full_size_of(self, element_spec, batched):
        raise NotImplementedError
