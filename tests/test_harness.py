"""The shared harness passes known-good Keras built-ins and fails broken objects."""

import keras
import numpy as np
import pytest

from keras_efficient import testing

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 5)).astype("float32")


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_check_layer__dense_passes(check):
    testing.check_layer(keras.layers.Dense, {"units": 3}, X, checks=[check])


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_check_loss__categorical_crossentropy_passes(check):
    y_true = np.eye(4)[RNG.integers(0, 4, size=8)].astype("float32")
    y_pred = RNG.normal(size=(8, 4)).astype("float32")

    def reference(t, p):
        log_softmax = p - np.log(np.exp(p).sum(-1, keepdims=True))
        smoothed = t * 0.9 + 0.1 / 4
        return np.mean(-(smoothed * log_softmax).sum(-1))

    testing.check_loss(keras.losses.CategoricalCrossentropy,
                       {"from_logits": True, "label_smoothing": 0.1}, y_true, y_pred,
                       reference=reference, checks=[check])


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_check_schedule__cosine_decay_passes(check):
    def reference(step):
        return 0.1 * (0.5 * (1 + np.cos(np.pi * min(step, 10) / 10)))

    testing.check_schedule(keras.optimizers.schedules.CosineDecay,
                           {"initial_learning_rate": 0.1, "decay_steps": 10},
                           [0, 1, 5, 10, 20], reference=reference, checks=[check])


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_check_model__functional_classifier_passes(check):
    y = RNG.integers(0, 3, size=8)

    def make_model():
        inputs = keras.Input((5,))
        hidden = keras.layers.Dense(4, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(3)(hidden))

    def compile_kwargs():
        return {"optimizer": keras.optimizers.Adam(0.01),
                "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    checks = [check] if check != "config" else []  # a functional model has no class config
    testing.check_model(make_model, compile_kwargs, X, y, checks=checks)


# The harness itself must be able to fail.


class ForgetfulDense(keras.layers.Dense):
    """Drops `use_bias` from its config: the config check must catch it."""

    def get_config(self):
        config = super().get_config()
        config.pop("use_bias")
        return config


class UnregisteredScale(keras.layers.Layer):
    """Not registered for serialization: the saving check must catch it."""

    def call(self, inputs):
        return inputs * 2.0


class ReplicaSumLoss(keras.losses.Loss):
    """Sums instead of averaging, so two replicas give twice the gradient... of a
    half batch each: the same. Scaled by the local batch size instead, it differs."""

    def call(self, y_true, y_pred):
        batch = keras.ops.cast(keras.ops.shape(y_pred)[0], "float32")
        return keras.ops.sum(keras.ops.square(y_pred - y_true)) / batch**2 * keras.ops.ones(
            keras.ops.shape(y_pred)[:1])


class Float32OnlyDense(keras.layers.Dense):
    """Casts its output to float32 regardless of policy: the bfloat16 check must notice."""

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)


def test_check_layer__config_check_fails_on_dropped_argument():
    with pytest.raises(AssertionError, match="config"):
        testing.check_layer(ForgetfulDense, {"units": 3, "use_bias": False}, X, checks=["config"])


def test_check_layer__saving_check_fails_on_unregistered_layer():
    with pytest.raises(TypeError, match="Could not locate class 'UnregisteredScale'"):
        testing.check_layer(UnregisteredScale, {}, X, checks=["saving"])


def test_check_layer__bfloat16_check_fails_on_float32_layer():
    with pytest.raises(AssertionError, match="bfloat16"):
        testing.check_layer(Float32OnlyDense, {"units": 3}, X, checks=["bfloat16"])


@pytest.mark.tensorflow_only("under JAX's DataParallel a loss sees the global batch: no "
                             "local batch size exists to scale by")
def test_check_loss__replicas_check_fails_on_local_batch_scaling():
    y_true = np.zeros((8, 2), "float32")
    y_pred = RNG.normal(size=(8, 2)).astype("float32")
    with pytest.raises(AssertionError, match="replicas"):
        testing.check_loss(ReplicaSumLoss, {}, y_true, y_pred, checks=["replicas"])


def test_check_loss__reference_check_fails_on_wrong_reference():
    y_true = np.eye(3)[[0, 1, 2, 0]].astype("float32")
    y_pred = RNG.normal(size=(4, 3)).astype("float32")
    with pytest.raises(AssertionError, match="reference"):
        testing.check_loss(keras.losses.CategoricalCrossentropy, {"from_logits": True},
                           y_true, y_pred, reference=lambda t, p: 0.0, checks=[])


def test_check_rejects_unknown_check_name():
    with pytest.raises(ValueError, match="Unknown check"):
        testing.check_layer(keras.layers.Dense, {"units": 2}, X, checks=["nope"])
    # Rejected before any check runs (the saving check would fail with a TypeError).
    with pytest.raises(ValueError, match="Unknown check 'nope'"):
        testing.check_layer(UnregisteredScale, {}, X, checks=["saving", "nope"])


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_check_model__baseline_experiment_cnn_passes(check):
    from keras_efficient.data import load_digits
    from keras_efficient.demo import base

    context = base.ExperimentContext(data=load_digits(), seed=0, epochs=1)
    x, y = context.data.x_train[:8], context.data.y_train[:8]

    def compile_kwargs():
        return {"optimizer": context.make_optimizer(),
                "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    testing.check_model(lambda: base.digits_cnn(context), compile_kwargs, x, y, checks=[check])
