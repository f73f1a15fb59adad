"""Stochastic depth that skips dropped blocks vs the same net without it.

The net of issue 4: eight residual blocks of two 3x3 convolutions at 64
channels on 32x32 inputs, batch 64, survival decaying linearly to p_L = 0.5
(`ke.models.build_resnet`). Expected compute with `mode="batch"`: the stem and
head plus 5.75 of 8 blocks, about 0.72x.

Cases:
- `no_drop`: the same net, every block always runs (baseline).
- `batch_skip`: `mode="batch"`, the dropped blocks are skipped by a conditional.
- `multiply_by_zero`: the peers' approach, the branch computed and multiplied by
  a batch-level 0/1 gate: keras-cv 0.9.0's `StochasticDepth` when keras-cv is
  installed, otherwise the same product written here (`_MultiplyByZero`).

A timed unit is one `fit` epoch of `STEPS_PER_UNIT` training steps on arrays
(SGD with momentum; on TensorFlow no XLA, the `fit` default on CPU; on JAX
jitted, as JAX always runs), so the random number of kept blocks averages over
several draws and the median is steadier.

Why single steps or single epochs swing (DESIGN.md §4 saw 0.65x to 1.0x per
epoch): the number of kept blocks per step is random (mean 5.75 of 8, standard
deviation 1.2 blocks, i.e. +-15 % of the network's cost per step), and on a
shared CPU the wall time of one and the same step varies by a factor of two or
more with the machine's load. The conditional itself skips what it should:
outside XLA the forward `If` passes the kept branch's activations to the
gradient as optionals (an empty optional when dropped) and both `If`s are
lowered to Switch/Merge, so only the taken branch runs (tests in
tests/regularization/test_stochastic_depth.py prove no forward and no backward
run for a dropped block). Under XLA (`jit_compile=True`) the dropped branch
must still output zeros for every saved activation of the kept branch, an extra
memory write per dropped block; XLA is not used here.

`stochastic_depth_fit` and `stochastic_depth_fit_data` time what users run
(issue 21): one `model.fit` epoch of `STEPS_PER_FIT` steps per timed unit,
Adam and every other setting at Keras's default, on numpy arrays and on a
batched `tf.data` pipeline, in `FIT_PROCESSES` fresh processes: the bounds hold on the
median over processes and (within 0.1) in the worst one. The nets are seeded, so
every process draws the same gates: the spread across processes is the
processes' own, not the draws'.
"""

import keras
import numpy as np
import tensorflow as tf

import keras_efficient as ke
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case
from keras_efficient.bench.base import fit_step
from keras_efficient.regularization.resnet import residual_branch
from keras_efficient.regularization.stochastic_depth import stochastic_depth_survival

BLOCKS = 8
FILTERS = 64
IMAGE_SIZE = 32
BATCH_SIZE = 64
FINAL_SURVIVAL = 0.5
NUM_CLASSES = 10
STEPS_PER_UNIT = 3
STEPS_PER_FIT = 3
FIT_PROCESSES = 6


class _MultiplyByZero(keras.layers.Layer):
    """`shortcut + b * residual`, `b ~ Bernoulli(p)` per batch: keras-cv's layer."""

    def __init__(self, survival_probability, **kwargs):
        super().__init__(**kwargs)
        self.survival_probability = survival_probability
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, inputs, training=None):
        shortcut, residual = inputs
        if not training:
            return shortcut + self.survival_probability * residual
        gate = keras.random.uniform((), seed=self.seed_generator) < self.survival_probability
        return shortcut + keras.ops.cast(gate, residual.dtype) * residual


def _multiply_by_zero_layer():
    try:
        from keras_cv.layers import StochasticDepth as KerasCVStochasticDepth
    except ImportError:
        return _MultiplyByZero, "own"
    return KerasCVStochasticDepth, "keras-cv 0.9.0"


def _peer_resnet():
    """`build_resnet`'s architecture with the peers' multiply-by-zero gate."""
    gate_layer, _ = _multiply_by_zero_layer()
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(FILTERS, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for index in range(1, BLOCKS + 1):
        survival = stochastic_depth_survival(index, BLOCKS, FINAL_SURVIVAL)
        branch = residual_branch(FILTERS, name=f"block{index}_branch")
        x = keras.layers.ReLU()(gate_layer(survival)([x, branch(x)]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))


def _train_steps(make_model):
    def setup():
        keras.utils.set_random_seed(0)
        model = make_model()
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            # TensorFlow: no XLA, the CPU default. JAX compiles every step (without
            # jit it would run op by op); its `lax.cond` runs one branch.
            jit_compile=keras.backend.backend() == "jax",
        )
        rng = np.random.default_rng(0)
        images = rng.normal(size=(STEPS_PER_UNIT * BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE, 3))
        labels = rng.integers(0, NUM_CLASSES, len(images))
        return fit_step(model, images.astype("float32"), labels, BATCH_SIZE)

    return setup


def _fit_epochs(make_model, pipeline):
    """One `fit` epoch of `STEPS_PER_FIT` steps on arrays or on a `tf.data` pipeline."""
    def setup():
        keras.utils.set_random_seed(0)
        model = make_model()
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        examples = STEPS_PER_FIT * BATCH_SIZE
        images = rng.normal(size=(examples, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
        labels = rng.integers(0, NUM_CLASSES, examples)
        if pipeline == "arrays":
            return fit_step(model, images, labels, BATCH_SIZE)
        dataset = (tf.data.Dataset.from_tensor_slices((images, labels))
                   .batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE))
        return lambda: model.fit(dataset, epochs=1, verbose=0).history["loss"][-1]

    return setup


def _resnet(stochastic_depth=None):
    def make_model():
        return ke.models.build_resnet(
            (IMAGE_SIZE, IMAGE_SIZE, 3), NUM_CLASSES, blocks=BLOCKS, filters=FILTERS,
            stochastic_depth=stochastic_depth, seed=0,
        )

    return make_model


def _fit_benchmark(pipeline):
    """`stochastic_depth_fit` (numpy arrays) or `stochastic_depth_fit_data` (tf.data)."""
    return Benchmark(
        name="stochastic_depth_fit" + ("_data" if pipeline == "data" else ""),
        description=(
            f"one fit epoch ({STEPS_PER_FIT} steps, Adam, Keras defaults) of the same net "
            f"on {'numpy arrays' if pipeline == 'arrays' else 'tf.data'}"
        ),
        cases=[
            Case("no_drop", _fit_epochs(_resnet(), pipeline)),
            Case("batch_skip", _fit_epochs(_resnet(FINAL_SURVIVAL), pipeline), max_ratio=0.80),
        ],
        baseline="no_drop",
        rounds=3,
        warmup=1,
        processes=FIT_PROCESSES,
    )


BENCHMARKS = [
    Benchmark(
        name="stochastic_depth",
        description=(
            f"{STEPS_PER_UNIT} training steps of {BLOCKS} residual blocks (2 conv 3x3, "
            f"{FILTERS} ch) on {IMAGE_SIZE}x{IMAGE_SIZE}x3, batch {BATCH_SIZE}, p_L = "
            f"{FINAL_SURVIVAL} linear decay; multiply_by_zero = "
            f"{_multiply_by_zero_layer()[1]} StochasticDepth"
        ),
        cases=[
            Case("no_drop", _train_steps(_resnet())),
            Case("batch_skip", _train_steps(_resnet(FINAL_SURVIVAL)), max_ratio=0.80),
            Case("multiply_by_zero", _train_steps(_peer_resnet)),
        ],
        baseline="no_drop",
        rounds=10,
        warmup=1,
    ),
    *[_fit_benchmark(pipeline) for pipeline in ("arrays", "data")],
]
