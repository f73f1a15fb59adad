"""Meta-learning step costs: a compiled meta-batch vs keras-io's per-task loop, and
second- vs first-order MAML (time and peak memory).

`maml`: one unit is one meta-update over 8 tasks (5-way 5-shot, 28x28 gray
images, a 3-conv network without BatchNorm, 4 inner SGD steps per task). The
baseline is keras-io's Reptile example ("Few-Shot learning with Reptile") as it
is written: per task `get_weights`, 4 eager inner steps (a `tf.GradientTape`
around `model(images)`, then `optimizer.apply_gradients`), `get_weights` again
and `set_weights` back, then one `set_weights` with the Reptile update, all
driven from Python. The example is TensorFlow-only; on JAX its eager step is
`jax.grad` of `model.stateless_call`, the same work. `ke.models.Reptile` does
the whole meta-batch in one `train_on_batch` (one compiled step) and must be at
least 3x faster (the issue's goal, a bound here). Two references explain the
margin: `train_on_batch_loop` is the same per-task loop with Keras's compiled
`train_on_batch` for each inner step (much faster than keras-io's eager steps),
and `reptile_adapt_only` is Reptile's `predict_on_batch` (the same 32 inner
steps and the query predictions in one compiled call, no meta-gradient), the
arithmetic floor of any implementation. On a shared 2-core CPU, on TensorFlow,
our step was at that floor and 0.52x the time of `train_on_batch_loop`: the
convolutions, the same in every implementation, are half of that loop's time,
so no implementation of the same arithmetic can be 3x faster than the compiled
loop on this CPU. On JAX the one large XLA program took 3-4x its CPU time in
wall time on the loaded machine (0.2x keras-io's loop, but slower than
`train_on_batch_loop`). Computing the tasks together (`jax.vmap` over the tasks
turns the per-task convolutions into grouped convolutions) was 3x slower on
CPU, and XLA on TensorFlow slower than its oneDNN kernels, so neither is used.
First- and second-order MAML on
the same meta-batch are shown beside them.

`maml_order`: second- vs first-order MAML, the same network and meta-batch; the
second-order step differentiates through the inner steps (Hessian-vector
products), so it costs more: no bound, the ratio is what is reported. Its
report adds peak memory, each order measured in a fresh process: the growth of
the peak resident set size (Linux `VmHWM`, reset through `/proc/self/clear_refs`
after the model is built) over the first 3 training steps, tracing and
compilation included, on both backends; on JAX also XLA's own figure for the
compiled train step, `memory_analysis().temp_size_in_bytes` (the buffers live
during a step besides its arguments and outputs).
"""

import json
import pathlib
import subprocess
import sys

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
_MEMORY_STEPS = 3


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


def _eager_inner_step(model, optimizer, loss, x, y):
    """One inner step as keras-io writes it: an eager gradient, then `apply_gradients`."""
    if keras.backend.backend() == "jax":
        import jax

        def task_loss(weights):
            return loss(y, model.stateless_call(weights, model.non_trainable_variables, x)[0])

        gradients = jax.grad(task_loss)([v.value for v in model.trainable_variables])
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            predictions = model(x)
            task_loss = loss(y, predictions)
        gradients = tape.gradient(task_loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))


def _setup_loop(inner_step):
    """A per-task Reptile loop with the weights copied in Python (keras-io's)."""
    def setup():
        keras.utils.set_random_seed(0)
        (support_x, support_y, _), _ = _episodes()
        model = _learner()
        optimizer = keras.optimizers.SGD(_INNER_LEARNING_RATE)
        model.compile(optimizer=optimizer, loss=_loss())

        def step():
            old_weights = model.get_weights()
            adapted = []
            for task in range(_META_BATCH):
                for _ in range(_INNER_STEPS):
                    inner_step(model, optimizer, support_x[task], support_y[task])
                adapted.append(model.get_weights())
                model.set_weights(old_weights)
            model.set_weights([
                old + _META_STEP_SIZE * (np.mean(new, axis=0) - old)
                for old, *new in zip(old_weights, *adapted)
            ])
            return model.get_weights()[0]

        return step

    return setup


_KERAS_IO_LOOP = _setup_loop(
    lambda model, optimizer, x, y: _eager_inner_step(model, optimizer, _loss(), x, y))
_TRAIN_ON_BATCH_LOOP = _setup_loop(
    lambda model, optimizer, x, y: model.train_on_batch(x, y))


def _meta_learner(make):
    keras.utils.set_random_seed(0)
    meta_learner = make(_learner())
    meta_learner.compile(optimizer=keras.optimizers.SGD(1.0), loss=_loss())
    return meta_learner


def _setup_meta_learner(make, train=True):
    def setup():
        meta_learner = _meta_learner(make)
        x, y = _episodes()
        if train:
            return lambda: meta_learner.train_on_batch(x, y)
        return lambda: meta_learner.predict_on_batch(x)

    return setup


def _reptile(learner):
    return ke.models.Reptile(learner, _INNER_LEARNING_RATE, _INNER_STEPS,
                             meta_step_size=_META_STEP_SIZE)


_ORDERS = {
    "maml_first_order": lambda learner: ke.models.MAML(
        learner, _INNER_LEARNING_RATE, _INNER_STEPS, first_order=True),
    "maml_second_order": lambda learner: ke.models.MAML(
        learner, _INNER_LEARNING_RATE, _INNER_STEPS),
}


def _peak_memory(order):
    """Peak memory of `_MEMORY_STEPS` training steps of `order`, in this process."""
    meta_learner = _meta_learner(_ORDERS[order])
    x, y = _episodes()
    status = pathlib.Path("/proc/self/status")

    def kib(field):
        line = next(line for line in status.read_text().splitlines()
                    if line.startswith(field))
        return int(line.split()[1])

    before = kib("VmRSS:")
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
    for _ in range(_MEMORY_STEPS):
        meta_learner.train_on_batch(x, y)
    result = {"peak_rss_growth_mib": (kib("VmHWM:") - before) / 1024}
    if keras.backend.backend() == "jax":
        import jax

        state = tuple([v.value for v in variables] for variables in (
            meta_learner.trainable_variables, meta_learner.non_trainable_variables,
            meta_learner.optimizer.variables, meta_learner.metrics_variables))
        compiled = jax.jit(meta_learner.train_step).lower(state, (x, y)).compile()
        result["xla_temp_mib"] = compiled.memory_analysis().temp_size_in_bytes / 2**20
    return result


def _memory_report():
    """Peak memory of first- and second-order MAML, each in a fresh process."""
    rows = ["| order | peak RSS growth, first 3 steps (MiB) | XLA temp bytes of a step (MiB, JAX) |",
            "|---|---:|---:|"]
    for order in _ORDERS:
        output = subprocess.run([sys.executable, "-m", __name__, order], check=True,
                                capture_output=True, text=True).stdout
        measured = json.loads(output.strip().splitlines()[-1])
        temp = measured.get("xla_temp_mib")
        rows.append(f"| {order} | {measured['peak_rss_growth_mib']:.1f} | "
                    f"{'–' if temp is None else f'{temp:.1f}'} |")
    return "\n".join(rows)


_SIZES = (f"{_META_BATCH} tasks, {_N_WAY}-way {_N_SHOT}-shot {_N_QUERY}-query 28x28, "
          f"3-conv net, {_INNER_STEPS} inner SGD steps")

BENCHMARKS = [
    Benchmark(
        name="maml",
        description=f"One meta-update ({_SIZES}): keras-io's per-task Reptile loop vs "
                    "one compiled meta-batch step.",
        cases=[
            Case("keras_io_reptile_loop", _KERAS_IO_LOOP),
            Case("train_on_batch_loop", _TRAIN_ON_BATCH_LOOP),
            Case("reptile_meta_batch", _setup_meta_learner(_reptile), max_ratio=1 / 3),
            Case("reptile_adapt_only", _setup_meta_learner(_reptile, train=False)),
            *(Case(order, _setup_meta_learner(make)) for order, make in _ORDERS.items()),
        ],
        baseline="keras_io_reptile_loop",
        rounds=7,
        warmup=2,
    ),
    Benchmark(
        name="maml_order",
        description=f"One MAML meta-update ({_SIZES}): second vs first order.",
        cases=[Case(order, _setup_meta_learner(make)) for order, make in _ORDERS.items()],
        baseline="maml_first_order",
        rounds=10,
        warmup=2,
        report=_memory_report,
    ),
]

if __name__ == "__main__":
    # `python -m keras_efficient.bench.benchmarks.maml ORDER`: the peak memory of one order, in a fresh process.
    print(json.dumps(_peak_memory(sys.argv[1])))
