"""Sequence-length warm-up (Li et al. 2021): short sequences first."""

import math

import tensorflow as tf

from keras_efficient.curriculum._shape_schedule import ShapeSchedule
from keras_efficient.utils import register
from keras_efficient.utils import validate_size


@register("keras_efficient.callbacks.SequenceLengthWarmup",
          "keras_efficient.curriculum.SequenceLengthWarmup")
class SequenceLengthWarmup(ShapeSchedule):
    """Truncates training sequences to a length that grows during warm-up.

    At step t the sequences are truncated to

        L(t) = min(L, max(L_0, k·⌊(L_0 + (L - L_0)·t / T_w) / k⌋))  for t < T_w

    with full length L, `initial_length` L_0, `length_increment` k and
    `warmup_steps` T_w; from T_w on the full sequences are used. Li et al.
    start at 8 tokens and keep lengths multiples of 8; the increment also
    bounds the number of distinct lengths, (L - L_0) / k + 2 at most.

    Use it twice, on the pipeline and as a callback of the same `fit`:
    `apply(dataset)` truncates, in the input pipeline, every tensor of the
    batch whose sequence axis (axis 1 of a batch) has the full length, inputs
    and per-token targets alike; the callback switches the model to one train
    function per length, each traced once with the length static.

    Args:
        warmup_steps: T_w, steps until the full length is used.
        initial_length: L_0, the length at step 0 (>= 1).
        length_increment: k, lengths are multiples of k (>= 1).
        max_length: the full length L; default: the dataset's static
            sequence length.

    Example:

    ```python
    warmup = ke.callbacks.SequenceLengthWarmup(warmup_steps=1000)
    train = warmup.apply(tf.data.Dataset.from_tensor_slices((tokens, labels)).batch(32))
    model.fit(train, epochs=10, steps_per_epoch=500, callbacks=[warmup])
    ```

    Reference:
        Li, Zhang & He, "The Stability-Efficiency Dilemma: Investigating
        Sequence Length Warmup for Training GPT Models", NeurIPS 2022
        (arXiv:2108.06084, 2021).
    """

    def __init__(self, warmup_steps, initial_length=8, length_increment=8, max_length=None):
        super().__init__()
        self.warmup_steps = validate_size("warmup_steps", warmup_steps)
        self.initial_length = validate_size("initial_length", initial_length)
        self.length_increment = validate_size("length_increment", length_increment)
        if max_length is not None:
            validate_size("max_length", max_length, low=initial_length)
        self.max_length = max_length
        self.full_size = None if max_length is None else (max_length,)

    def _sizes(self, full_size):
        (full,) = full_size
        start, increment = min(self.initial_length, full), self.length_increment

        def length(step):
            if step >= self.warmup_steps:
                return full
            raw = start + (full - start) * step / self.warmup_steps
            return min(full, max(start, increment * math.floor(raw / increment)))

        return [[length(t)] for t in range(self.warmup_steps + 1)]

    def _full_size_of(self, element_spec, batched):
        axis = 1 if batched else 0
        lengths = {spec.shape[axis] for spec in tf.nest.flatten(element_spec)
                   if spec.shape.rank is not None and spec.shape.rank > axis}
        lengths.discard(None)
        if not lengths:
            raise ValueError("SequenceLengthWarmup needs the full sequence length: pass "
                             f"`max_length`. The dataset's elements are {element_spec}")
        return (max(lengths),)

    def _transform(self, data, size, batched):
        (full,) = self.full_size
        axis = 1 if batched else 0

        def truncate(value):
            if value.shape.rank is None or value.shape.rank <= axis or value.shape[axis] != full:
                return value
            return value[:, : size[0]] if batched else value[: size[0]]

        return tf.nest.map_structure(truncate, data)

    def _pin(self, data, size):
        def pin(value):
            if value is None or value.shape.rank is None or value.shape.rank < 2 or value.shape[1] is not None:
                return value
            return tf.ensure_shape(value, [None, size[0], *value.shape[2:]])

        return tf.nest.map_structure(pin, data)

    def get_config(self):
        return {"warmup_steps": self.warmup_steps, "initial_length": self.initial_length,
                "length_increment": self.length_increment, "max_length": self.max_length}
