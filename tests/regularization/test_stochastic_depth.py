"""StochasticDepth, stochastic_depth_survival and build_resnet against the paper."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.layers import StochasticDepth
from keras_efficient.layers import stochastic_depth_survival
from keras_efficient.models import build_resnet

_X = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")


@tf.custom_gradient
def _fail_if_differentiated(x):
    # Assert ops run only outside XLA: use with jit_compile=False.
    def grad(upstream):
        with tf.control_dependencies([tf.debugging.Assert(False, ["backward pass ran"])]):
            return tf.identity(upstream)

    return tf.identity(x), grad


class _Probe(keras.layers.Layer):
    """Identity that counts its forward runs and, with `guard`, fails on a backward run."""

    def __init__(self, guard=False, **kwargs):
        super().__init__(**kwargs)
        self.guard = guard

    def build(self, input_shape):
        self.forward = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, inputs):
        self.forward.assign_add(1.0)
        return _fail_if_differentiated(inputs) if self.guard else inputs


def _dense_branch(units=3):
    # A deterministic branch with a closed form: f(x) = x @ W + b.
    return keras.Sequential([keras.layers.Dense(units, kernel_initializer="glorot_uniform",
                                                bias_initializer="ones")])


def _branch_numpy(layer, x):
    kernel, bias = (np.asarray(w, np.float64) for w in layer.block.get_weights())
    return np.asarray(x, np.float64) @ kernel + bias


def test_stochastic_depth_survival__linear_decay_and_expected_depth():
    blocks, final = 54, 0.5
    survival = np.array([stochastic_depth_survival(l, blocks, final)
                         for l in range(1, blocks + 1)])
    np.testing.assert_allclose(survival, 1.0 - np.arange(1, blocks + 1) / blocks * (1 - final))
    assert survival[-1] == final
    # The book: expected depth (3L - 1) / 4 for p_L = 0.5, ~40 of 54 blocks.
    np.testing.assert_allclose(survival.sum(), (3 * blocks - 1) / 4)


def test_stochastic_depth__kept_block_is_x_plus_block_of_x():
    x = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    layer = StochasticDepth(_dense_branch(), survival_probability=0.5, seed=2)
    outputs = [keras.ops.convert_to_numpy(layer(x, training=True)) for _ in range(20)]
    branch = _branch_numpy(layer, x)
    kept = [np.allclose(out, x + branch, atol=1e-5) for out in outputs]
    dropped = [np.array_equal(out, x) for out in outputs]
    assert all(k != d for k, d in zip(kept, dropped))  # each step one or the other
    assert any(kept) and any(dropped)
    always = StochasticDepth(_dense_branch(), survival_probability=1.0)
    out = keras.ops.convert_to_numpy(always(x, training=True))
    np.testing.assert_allclose(out, x + _branch_numpy(always, x), atol=1e-5)


def _probed_model(survival_probability, guard, jit_compile=False):
    branch = keras.Sequential([keras.layers.Conv2D(3, 3, padding="same"),
                               keras.layers.BatchNormalization(), _Probe(guard)])
    model = keras.Sequential([keras.Input(_X.shape[1:]),
                              StochasticDepth(branch, survival_probability, seed=0)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
    return model, branch


def _branch_state(branch):
    # Kernel, bias, BatchNorm gamma, beta, moving mean and variance (not the probe).
    return [w.numpy().copy() for w in branch.weights[:-1]]


def _assert_zero_gradients(model, branch, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True) ** 2)
        return tape.gradient(loss, branch.trainable_weights)

    for gradient in gradients(_X):
        assert gradient is None or not np.any(gradient.numpy())


@pytest.mark.tensorflow_only("the probe's backward guard is a tf.custom_gradient")
def test_stochastic_depth__dropped_block_is_not_computed():
    # (Practically) always dropped; the probe fails the step if its backward runs.
    model, branch = _probed_model(1e-7, guard=True)
    before = _branch_state(branch)
    model.fit(_X, np.ones_like(_X), batch_size=4, epochs=3, verbose=0)
    assert branch.layers[-1].forward.numpy() == 0
    # Zero gradient (plain SGD leaves the weights) and BatchNorm statistics unmoved.
    for old, new in zip(before, _branch_state(branch)):
        np.testing.assert_array_equal(new, old)
    _assert_zero_gradients(model, branch, jit_compile=False)


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="XLA:CPU only")
@pytest.mark.tensorflow_only("the product gate is TensorFlow's XLA:CPU path")
def test_stochastic_depth__xla_on_cpu_gates_by_a_product():
    # XLA:CPU conditionals are 10-20x slower than their contents: there the
    # dropped branch runs, gets a zero gradient, and its output is discarded.
    model, branch = _probed_model(1e-7, guard=False, jit_compile=True)
    before = _branch_state(branch)
    model.fit(_X, np.ones_like(_X), batch_size=4, epochs=3, verbose=0)
    assert branch.layers[-1].forward.numpy() == 3
    for old, new in zip(before[:4], _branch_state(branch)[:4]):  # kernel, bias, gamma, beta
        np.testing.assert_array_equal(new, old)
    _assert_zero_gradients(model, branch, jit_compile=True)
    outputs = tf.function(lambda x: model(x, training=True), jit_compile=True)(_X)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs), _X)


@pytest.mark.tensorflow_only("the probe's backward guard is a tf.custom_gradient")
def test_stochastic_depth__kept_block_runs_forward_and_backward():
    model, branch = _probed_model(1.0, guard=False)
    before = _branch_state(branch)
    model.fit(_X, np.ones_like(_X), batch_size=4, epochs=3, verbose=0)
    assert branch.layers[-1].forward.numpy() == 3
    for old, new in zip(before, _branch_state(branch)):
        assert not np.array_equal(new, old)
    guarded, _ = _probed_model(1.0, guard=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="backward pass ran"):
        guarded.fit(_X, np.ones_like(_X), batch_size=4, epochs=1, verbose=0)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_stochastic_depth__expected_training_output_equals_inference(mode):
    survival, draws = 0.7, 400
    x = np.random.default_rng(3).normal(size=(64, 3)).astype("float32")
    layer = StochasticDepth(_dense_branch(), survival, mode=mode, seed=4)
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    branch = _branch_numpy(layer, x)
    np.testing.assert_allclose(inference, x + survival * branch, atol=1e-5)

    training_step = lambda: layer(x, training=True)
    if keras.backend.backend() == "tensorflow":
        training_step = tf.function(training_step)  # fast; JAX runs it eagerly
    mean = np.mean([keras.ops.convert_to_numpy(training_step()) for _ in range(draws)], axis=0)
    # Gate frequency per example: a binomial mean, std sqrt(p (1 - p) / draws).
    frequency = np.sum((mean - x) * branch, axis=1) / np.sum(branch**2, axis=1)
    tolerance = 4 * np.sqrt(survival * (1 - survival) / draws)
    assert np.all(np.abs(frequency - survival) < tolerance), frequency
    assert abs(np.mean(frequency) - survival) < tolerance / (8 if mode == "sample" else 1)


@pytest.mark.tensorflow_only("per-replica random draws exist only under tf.distribute; "
                             "JAX draws once for the global batch")
def test_stochastic_depth__replicas_draw_the_same_gate():
    # Batch mode on two replicas: every replica keeps or skips the block together,
    # so the all-reduced gradient is that of one device; the gate changes per step.
    strategy = testing.two_replica_strategy()
    with strategy.scope():
        layer = StochasticDepth(_dense_branch(1), 0.5, seed=1)
        layer.build((None, 1))
    step = tf.function(lambda: strategy.run(lambda: layer(tf.zeros((1, 1)), training=True)))
    gates = np.array([[float(keras.ops.convert_to_numpy(value)[0, 0])
                       for value in strategy.experimental_local_results(step())]
                      for _ in range(16)])
    np.testing.assert_array_equal(gates[:, 0], gates[:, 1])
    assert set(gates[:, 0]) == {0.0, 1.0}


def test_stochastic_depth__sample_mode_draws_one_gate_per_example():
    survival, batch = 0.6, 4000
    x = np.zeros((batch, 2), "float32")
    layer = StochasticDepth(_dense_branch(2), survival, mode="sample", seed=5)
    outputs = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = np.all(outputs == 1.0, axis=1)  # f(0) = bias = 1
    assert np.all(kept | np.all(outputs == 0.0, axis=1))
    assert abs(kept.mean() - survival) < 4 * np.sqrt(survival * (1 - survival) / batch)


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"survival_probability": 0.0}, "survival_probability"),
     ({"survival_probability": 1.5}, "survival_probability"),
     ({"mode": "layer"}, "mode")],
)
def test_stochastic_depth__rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        StochasticDepth(_dense_branch(), **kwargs)


def test_stochastic_depth_survival__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `final_survival`"):
        stochastic_depth_survival(1, 4, 0.0)
    with pytest.raises(ValueError, match="argument `block_index`"):
        stochastic_depth_survival(5, 4)


def _conv_branch(batch_norm):
    layers = [keras.layers.Conv2D(3, 3, padding="same")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    return keras.Sequential(layers)


# The modes differ only in training: the sample mode runs the training checks.
@pytest.mark.parametrize(
    "check, mode",
    [(check, "batch") for check in testing.LAYER_CHECKS]
    + [(check, "sample") for check in ("jit", "bfloat16", "replicas")],
)
def test_stochastic_depth__harness(check, mode):
    testing.check_layer(
        StochasticDepth,
        lambda: {"block": _conv_branch(True), "survival_probability": 0.5, "mode": mode,
                 "seed": 3},
        _X, checks=[check], random_in_training=True,
    )


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_stochastic_depth__harness_deterministic(check):
    testing.check_layer(
        StochasticDepth, lambda: {"block": _conv_branch(False), "survival_probability": 1.0},
        _X, checks=[check],
    )


def test_build_resnet__survival_decays_linearly():
    model = build_resnet((8, 8, 3), 5, blocks=4, filters=4, stochastic_depth=0.5,
                         drop_block_rate=0.1, drop_block_size=3)
    gates = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    np.testing.assert_allclose([g.survival_probability for g in gates],
                               [0.875, 0.75, 0.625, 0.5])
    assert [layer.name for layer in model.layers if "dropblock" in layer.name] == [
        "block3_dropblock", "block4_dropblock"]
    plain = build_resnet((8, 8, 3), 5, blocks=4, filters=4)
    assert {g.survival_probability for g in plain.layers if isinstance(g, StochasticDepth)} == {
        1.0}


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_build_resnet__rejects_bad_drop_block_rate(rate):
    with pytest.raises(ValueError, match="argument `drop_block_rate`"):
        build_resnet((8, 8, 3), 5, blocks=2, filters=4, drop_block_rate=rate)


def _classifier_compile():
    return {"optimizer": keras.optimizers.SGD(0.05),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}


_Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_build_resnet__harness(check):
    testing.check_model(
        lambda: build_resnet(_X.shape[1:], 3, blocks=2, filters=4, stochastic_depth=0.5,
                             drop_block_rate=0.1, drop_block_size=2, seed=0),
        _classifier_compile, _X, _Y, checks=[check], random_in_training=True,
    )


def test_build_resnet__harness_deterministic():
    # Without gates a step is deterministic: XLA must equal eager. (Two replicas
    # cannot equal one device here: BatchNorm normalizes each replica's half batch.)
    testing.check_model(
        lambda: build_resnet(_X.shape[1:], 3, blocks=2, filters=4),
        _classifier_compile, _X, _Y, checks=["jit"],
    )


class _KeptBlocks(keras.callbacks.Callback):
    """Which blocks each `fit` step kept: a dropped block's BatchNorm statistics stay put."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def _statistics(self):
        return [keras.ops.convert_to_numpy(layer.block.layers[1].moving_mean)
                for layer in self.model.layers if isinstance(layer, StochasticDepth)]

    def on_train_batch_begin(self, batch, logs=None):
        self.before = self._statistics()

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(tuple(bool(np.any(old != new))
                                for old, new in zip(self.before, self._statistics())))


def _kept_blocks_under_fit(data, steps=12):
    keras.utils.set_random_seed(0)
    model = build_resnet((4, 4, 3), 2, blocks=4, filters=4, stochastic_depth=0.5, seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * steps, 4, 4, 3)).astype("float32")
    y = rng.integers(0, 2, 2 * steps)
    inputs = {"x": x, "y": y, "batch_size": 2}
    if data == "tf.data":
        inputs = {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(2)}
    kept = _KeptBlocks()
    model.fit(**inputs, epochs=1, shuffle=False, verbose=0, callbacks=[kept])
    return kept.steps


def test_build_resnet__gates_change_from_step_to_step_under_fit():
    # A gate drawn once at trace time (a seed state that does not advance inside
    # the compiled train function) would keep the same blocks at every step.
    steps = _kept_blocks_under_fit("arrays")
    assert len(steps) == 12 and len(set(steps)) > 1
    # p_l = 0.875 ... 0.5: the last block is dropped at some steps and kept at others.
    assert 0 < sum(step[-1] for step in steps) < len(steps)
    # The gates depend on the seed only: a new model with the same seed, fed by
    # tf.data instead of arrays, keeps the same blocks at every step.
    assert _kept_blocks_under_fit("tf.data") == steps
