"""Meta-learning step costs: a compiled meta-batch vs keras-io's per-task loop, and
second- vs first-order MAML.

`maml`: one unit is one meta-update over 8 tasks (5-way 5-shot, 28x28
gray images, a 3-conv network without BatchNorm, 4 inner SGD steps per task).
The baseline is keras-io's Reptile example ("Few-Shot learning with Reptile"):
per task, `get_weights`, 4 `train_on_batch` calls on the support set,
`get_weights` again and `set_weights` back, then one `set_weights` with the
Reptile update, all driven from Python. `ke.models.Reptile` does the same update
for the whole meta-batch in one `train_on_batch` (one compiled step). The issue's
goal is at least 3x faster; it is not a bound here because it was not met on the
shared 2-core CPU where this was written (0.42x and 0.65x of the loop's time in
two runs: the work is mostly convolution arithmetic, the same in both). First- and
second-order MAML on the same meta-batch are shown beside them.

`maml_order`: second- vs first-order MAML, the same network and meta-batch; the
second-order step differentiates through the inner steps (Hessian-vector
products), so it costs more: no bound, the ratio is what is reported.
"""

import keras
import numpy as np

import keras_efficient as ke
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case

_META_BATCH = 8
_N_WAY = 5
_N_SHOT = 5
_N_QUERY = 5
_INNER_STEPS = 4
_INNER_LEARNING_RATE = 0.01
_META_STEP_SIZE = 0.25


def _learner():
    layers = [keras.Input((28, 28, 1))]
    for _ in range(3):
        layers.append(keras.layers.Conv2D(32, 3, strides=2, padding="same",
                                          activation="relu"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(_N_WAY)]
    return keras.Sequential(layers)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _episodes():
    rng = np.random.default_rng(0)
    support_x = rng.uniform(size=(_META_BATCH, _N_WAY * _N_SHOT, 28, 28, 1)).astype("float32")
    query_x = rng.uniform(size=(_META_BATCH, _N_WAY * _N_QUERY, 28, 28, 1)).astype("float32")
    support_y = np.tile(np.repeat(np.arange(_N_WAY), _N_SHOT), (_META_BATCH, 1))
    query_y = np.tile(np.repeat(np.arange(_N_WAY), _N_QUERY), (_META_BATCH, 1))
    return (support_x, support_y.astype("int32"), query_x), query_y.astype("int32")


def _setup_keras_io_loop():
    """keras-io's Reptile: per-task inner training with weights copied in Python."""
    keras.utils.set_random_seed(0)
    (support_x, support_y, _), _ = _episodes()
    model = _learner()
    model.compile(optimizer=keras.optimizers.SGD(_INNER_LEARNING_RATE), loss=_loss())

    def step():
        old_weights = model.get_weights()
        adapted = []
        for task in range(_META_BATCH):
            for _ in range(_INNER_STEPS):
                model.train_on_batch(support_x[task], support_y[task])
            adapted.append(model.get_weights())
            model.set_weights(old_weights)
        model.set_weights([
            old + _META_STEP_SIZE * (np.mean(new, axis=0) - old)
            for old, *new in zip(old_weights, *adapted)
        ])
        return model.get_weights()[0]

    return step


def _setup_meta_learner(make):
    def setup():
        keras.utils.set_random_seed(0)
        x, y = _episodes()
        meta_learner = make(_learner())
        meta_learner.compile(optimizer=keras.optimizers.SGD(1.0), loss=_loss())

        def step():
            return meta_learner.train_on_batch(x, y)

        return step

    return setup


def _reptile(learner):
    return ke.models.Reptile(learner, _INNER_LEARNING_RATE, _INNER_STEPS,
                             meta_step_size=_META_STEP_SIZE)


_REPTILE = _setup_meta_learner(_reptile)
_MAML_FIRST_ORDER = _setup_meta_learner(lambda learner: ke.models.MAML(
    learner, _INNER_LEARNING_RATE, _INNER_STEPS, first_order=True))
_MAML_SECOND_ORDER = _setup_meta_learner(lambda learner: ke.models.MAML(
    learner, _INNER_LEARNING_RATE, _INNER_STEPS))

_SIZES = (f"{_META_BATCH} tasks, {_N_WAY}-way {_N_SHOT}-shot {_N_QUERY}-query 28x28, "
          f"3-conv net, {_INNER_STEPS} inner SGD steps")

BENCHMARKS = [
    Benchmark(
        name="maml",
        description=f"One meta-update ({_SIZES}): keras-io's per-task Reptile loop vs "
                    "one compiled meta-batch step.",
        cases=[
            Case("keras_io_reptile_loop", _setup_keras_io_loop),
            Case("reptile_meta_batch", _REPTILE),
            Case("maml_first_order", _MAML_FIRST_ORDER),
            Case("maml_second_order", _MAML_SECOND_ORDER),
        ],
        baseline="keras_io_reptile_loop",
        rounds=10,
        warmup=2,
    ),
    Benchmark(
        name="maml_order",
        description=f"One MAML meta-update ({_SIZES}): second vs first order.",
        cases=[
            Case("maml_first_order", _MAML_FIRST_ORDER),
            Case("maml_second_order", _MAML_SECOND_ORDER),
        ],
        baseline="maml_first_order",
        rounds=10,
        warmup=2,
    ),
]
