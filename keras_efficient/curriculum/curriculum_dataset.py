"""A `tf.data` pipeline that paces the training data by difficulty."""

import numpy as np
import tensorflow as tf

from keras_efficient.curriculum.pacing import PacingFunction
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

ORDERINGS = ("curriculum", "anti_curriculum", "random")

# The dataset holds one prefix size per step: 10^8 steps are 800 MB already.
MAX_STEPS = 10**8


@export("keras_efficient.curriculum.CurriculumDataset")
class CurriculumDataset(tf.data.Dataset):
    """Batches drawn, at step t, from the easiest ⌈p(t)·N⌉ training examples.

    The examples are sorted by `scores` (higher is harder). Batch t (one per
    training step) is a uniformly random subset, without replacement, of the
    first n(t) = ⌈p(t)·N⌉ examples in that order, where p is the pacing
    function (Hacohen & Weinshall 2019; Wu et al. 2021). A prefix smaller than
    the batch is repeated to fill it, so every batch has `batch_size` examples
    and the train function is traced once.

    For comparisons, `ordering="anti_curriculum"` sorts hardest first and
    `ordering="random"` uses a fixed random order with the same pacing (Wu et
    al.'s random curriculum).

    The dataset yields `total_steps` batches in all. Give `fit` the same number
    of steps: `model.fit(data, epochs=E, steps_per_epoch=data.total_steps // E)`
    (with `steps_per_epoch` Keras keeps one iterator across epochs, so step t of
    the dataset is training step t).

    Args:
        x: the features, an array or a dict of arrays with N rows.
        y: the labels, an array with N rows, or None.
        scores: difficulty of each example, N numbers (no NaN), higher is harder;
            e.g. `ExampleStatistics.mean_loss` or `teacher_scores(...)`.
        pacing: a `keras_efficient.curriculum.pacing` function, or any
            callable `step -> fraction in (0, 1]`.
        batch_size: examples per batch.
        ordering: "curriculum" (easiest first), "anti_curriculum" (hardest
            first) or "random".
        total_steps: the number of batches; default `pacing.total_steps`.
        seed: seed of the batch sampling and of the random ordering.
        include_ids: also yield each example's id (its row in `x`): features
            become `{"inputs": x, id_key: ids}` (or `x` plus `id_key` if `x`
            is a dict), for `ExampleStatistics`.
        id_key: the key of the ids when `include_ids`.

    Attributes:
        order: the example ids from easiest to hardest (in `ordering`'s sense).
        prefix_sizes: n(t) for t = 0, ..., total_steps - 1.

    Example:

    >>> import numpy as np
    >>> from keras_efficient.curriculum import pacing
    >>> x = np.arange(10, dtype="float32")[:, None]
    >>> data = CurriculumDataset(x, np.zeros(10), scores=np.arange(10),
    ...                          pacing=pacing.linear(4, 0.3, 1.0), batch_size=2)
    >>> data.prefix_sizes.tolist()
    [3, 5, 7, 9]

    Reference:
        Hacohen & Weinshall, "On the Power of Curriculum Learning in Training
        Deep Networks", ICML 2019. Wu, Dyer & Neyshabur, "When Do Curricula
        Work?", ICLR 2021.
    """

    def __init__(self, x, y=None, *, scores, pacing, batch_size=32, ordering="curriculum",
                 total_steps=None, seed=None, include_ids=False, id_key="example_id"):
        num_examples = len(next(iter(x.values())) if isinstance(x, dict) else x)
        if not num_examples:
            raise ValueError("Invalid value received for argument `x`. Expected at least one "
                             "example. Received: an empty x")
        scores = np.asarray(scores, dtype="float64").reshape(-1)
        if len(scores) != num_examples:
            raise ValueError(
                f"Invalid value received for argument `scores`. Expected one score per "
                f"example ({num_examples}). Received: {len(scores)} scores")
        if y is not None and len(y) != num_examples:
            raise ValueError(
                f"Invalid value received for argument `y`. Expected one label per example "
                f"({num_examples}). Received: {len(y)} labels")
        if np.isnan(scores).any():
            raise ValueError("Invalid value received for argument `scores`. Expected numbers "
                             f"without NaN. Received: NaN at {np.flatnonzero(np.isnan(scores))}")
        if not callable(pacing):
            raise TypeError("Invalid type received for argument `pacing`. Expected a callable "
                            f"`step -> fraction`. Received: pacing={pacing!r}")
        if total_steps is None:
            if not isinstance(pacing, PacingFunction):
                raise ValueError("Argument `total_steps` is required when `pacing` is not a "
                                 "`keras_efficient.curriculum.pacing` function.")
            total_steps = pacing.total_steps
        self.total_steps = validate_size("total_steps", total_steps, high=MAX_STEPS)
        self.batch_size = validate_size("batch_size", batch_size)
        self.ordering = validate_choice("ordering", ordering, ORDERINGS)
        validate_seed("seed", seed)
        validate_key("id_key", id_key)
        self.seed = int(np.random.randint(2**31)) if seed is None else seed

        self.prefix_sizes = _prefix_sizes(pacing, self.total_steps, num_examples)
        if ordering == "random":
            self.order = np.random.default_rng(self.seed).permutation(num_examples)
        else:
            # Stable sort: ties keep their row order, so the order is reproducible.
            self.order = np.argsort(scores if ordering == "curriculum" else -scores,
                                    kind="stable")

        order = tf.constant(self.order, tf.int64)
        prefix_sizes = tf.constant(self.prefix_sizes, tf.int64)
        batch_positions = tf.range(self.batch_size, dtype=tf.int64)

        def sample_ids(step):
            size = prefix_sizes[step]
            # A random permutation of the prefix (stateless, per step), first
            # `batch_size` entries: a random subset without replacement.
            positions = tf.random.experimental.index_shuffle(
                batch_positions % size, seed=tf.stack([tf.constant(self.seed, tf.int64), step]),
                max_index=size - 1)
            return tf.gather(order, positions)

        features = tf.nest.map_structure(tf.constant, x)
        labels = None if y is None else tf.constant(np.asarray(y))

        def gather(ids):
            batch = tf.nest.map_structure(lambda value: tf.gather(value, ids), features)
            if include_ids:
                batch = ({**batch, id_key: ids} if isinstance(batch, dict)
                         else {"inputs": batch, id_key: ids})
            return batch if labels is None else (batch, tf.gather(labels, ids))

        self._pipeline = (
            tf.data.Dataset.range(self.total_steps)
            .map(sample_ids)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
        super().__init__(self._pipeline._variant_tensor)

    def _inputs(self):
        return [self._pipeline]

    @property
    def element_spec(self):
        return self._pipeline.element_spec


def _prefix_sizes(pacing, total_steps, num_examples):
    """n(t) = ⌈p(t)·N⌉ for every step, after checking p(t) is in (0, 1]."""
    if isinstance(pacing, PacingFunction):
        fractions = pacing.fractions(total_steps)
    else:
        fractions = np.array([float(pacing(step)) for step in range(total_steps)])
    bad = np.flatnonzero(~((fractions > 0) & (fractions <= 1)))
    if len(bad):
        raise ValueError(
            f"Invalid value received for argument `pacing`. Expected fractions in (0, 1] "
            f"at every step. Received: pacing({bad[0]})={fractions[bad[0]]!r}")
    # Rounded first so that float error (0.7 * 100 = 70.00000000000001) does
    # not add an example.
    sizes = np.ceil(np.round(fractions * num_examples, 6)).astype("int64")
    return np.clip(sizes, 1, num_examples)

