"""SharpnessAwareMinimization: one step against a float64 numpy reference of the
SAM / ASAM / m-sharpness update, BatchNorm statistics, loss scaling, the shared
harness, and argument errors."""

import contextlib

import keras
import numpy as np
import pytest

import keras_efficient as ke
from keras_efficient import testing

SAM = ke.models.SharpnessAwareMinimization

_N = 8
_L2 = 0.01
_LR = 0.1
_RNG = np.random.default_rng(0)
_X = {"a": _RNG.normal(size=(_N, 3)).astype("float32"),
      "b": _RNG.normal(size=(_N, 2)).astype("float32")}
_Y = _RNG.normal(size=(_N, 2)).astype("float32")
_SW = _RNG.uniform(0.5, 1.5, size=(_N,)).astype("float32")


def _mlp():
    """Dict input -> concat -> Dense(4, tanh, L2) -> Dense(2): small enough for numpy."""
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="tanh",
                                kernel_regularizer=keras.regularizers.L2(_L2))(
        keras.layers.Concatenate()([a, b]))
    return keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(hidden))


def _sgd_mse():
    return {"optimizer": keras.optimizers.SGD(_LR), "loss": "mse"}


# ------------------------------------------------------------ float64 reference


def _loss_and_grad(w, x, y, sw):
    """MSE (mean over outputs, weighted, / batch size) + L2 on the first kernel."""
    w1, b1, w2, b2 = w
    hidden = np.tanh(x @ w1 + b1)
    residual = hidden @ w2 + b2 - y
    loss = np.sum(sw * np.mean(residual ** 2, axis=1)) / len(x) + _L2 * np.sum(w1 ** 2)
    d_out = 2.0 * sw[:, None] * residual / (len(x) * y.shape[1])
    d_pre = (d_out @ w2.T) * (1.0 - hidden ** 2)
    return loss, [x.T @ d_pre + 2 * _L2 * w1, d_pre.sum(0), hidden.T @ d_out, d_out.sum(0)]


def _epsilon(w, g, rho, adaptive=False, eta=0.01):
    """SAM: rho g / ||g||; ASAM (Kwon et al. 2021): rho T^2 g / ||T g||, T = |w| + eta."""
    scale = [np.abs(v) + eta if adaptive else np.ones_like(v) for v in w]
    norm = np.sqrt(sum(np.sum((t * gi) ** 2) for t, gi in zip(scale, g)))
    return [rho * t * t * gi / norm for t, gi in zip(scale, g)]


def _sam_gradient(w, x, y, sw, rho, adaptive=False, splits=1):
    """Average over `splits` sub-batches of grad L_j(w + eps_j)."""
    gradients = []
    for xj, yj, swj in zip(np.split(x, splits), np.split(y, splits), np.split(sw, splits)):
        _, g = _loss_and_grad(w, xj, yj, swj)
        eps = _epsilon(w, g, rho, adaptive)
        gradients.append(_loss_and_grad([v + e for v, e in zip(w, eps)], xj, yj, swj)[1])
    return [np.mean(parts, axis=0) for parts in zip(*gradients)]


def _fixed_sam(loss_scale=None, **kwargs):
    keras.utils.set_random_seed(7)
    model = SAM(_mlp(), **kwargs)
    optimizer = keras.optimizers.SGD(_LR)
    if loss_scale is not None:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=loss_scale)
    model.compile(optimizer=optimizer, loss="mse")
    weights = [np.asarray(v, np.float64) for v in model.model.get_weights()]
    x = np.concatenate([_X["a"], _X["b"]], axis=1).astype(np.float64)
    return model, weights, x


@pytest.mark.parametrize("kwargs", [
    {"rho": 0.05},
    {"rho": 0.5, "adaptive": True},
    {"rho": 0.1, "num_batch_splits": 2},
    {"rho": 0.5, "num_batch_splits": 4, "adaptive": True},
    # A loss scale whose squared gradient norm overflows float32 (2^200 > 3e38).
    {"rho": 0.05, "loss_scale": 2.0 ** 100},
], ids=["sam", "asam", "m_sharpness", "asam_m_sharpness", "large_loss_scale"])
def test_sharpness_aware_minimization__one_step_equals_float64_reference(kwargs):
    model, w, x = _fixed_sam(**kwargs)
    model.train_on_batch(_X, _Y, sample_weight=_SW)
    gradient = _sam_gradient(w, x, _Y.astype(np.float64), _SW.astype(np.float64),
                             kwargs["rho"], kwargs.get("adaptive", False),
                             kwargs.get("num_batch_splits") or 1)
    expected = [v - _LR * g for v, g in zip(w, gradient)]
    for actual, wanted in zip(model.get_weights(), expected):
        np.testing.assert_allclose(actual, wanted, atol=1e-5, rtol=0)
    # The SAM step differs from a plain step by more than the tolerance.
    plain = [v - _LR * g for v, g in zip(w, _loss_and_grad(w, x, _Y, _SW)[1])]
    assert max(np.max(np.abs(a - p)) for a, p in zip(model.get_weights(), plain)) > 1e-4


def test_sharpness_aware_minimization__interval_takes_sam_step_every_kth_step():
    model, w, x = _fixed_sam(rho=0.2, interval=2)
    for step in range(3):
        model.train_on_batch(_X, _Y, sample_weight=_SW)
        if step % 2 == 0:
            gradient = _sam_gradient(w, x, _Y, _SW, 0.2)
        else:
            gradient = _loss_and_grad(w, x, _Y, _SW)[1]
        w = [v - _LR * g for v, g in zip(w, gradient)]
    for actual, wanted in zip(model.get_weights(), w):
        np.testing.assert_allclose(actual, wanted, atol=1e-5, rtol=0)


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def _unflat(vector, like):
    sizes = np.cumsum([a.size for a in like])[:-1]
    return [part.reshape(a.shape) for part, a in zip(np.split(vector, sizes), like)]


def test_sharpness_aware_minimization__looksam_equals_float64_reference():
    # LookSAM (Liu et al. 2022, Alg. 1): on SAM steps g_v = g_s - |g_s| cos(g, g_s) g/|g|
    # is stored; in between the step is g + alpha |g| g_v/|g_v|.
    alpha, rho = 0.7, 0.2
    model, w, x = _fixed_sam(rho=rho, interval=2, looksam_alpha=alpha)
    direction = None
    for step in range(4):
        model.train_on_batch(_X, _Y, sample_weight=_SW)
        g = _flat(_loss_and_grad(w, x, _Y, _SW)[1])
        if step % 2 == 0:
            g_s = _flat(_sam_gradient(w, x, _Y, _SW, rho))
            g_v = g_s - np.linalg.norm(g_s) * (g @ g_s) / (np.linalg.norm(g)
                                                            * np.linalg.norm(g_s)) * g / np.linalg.norm(g)
            direction, update = g_v / np.linalg.norm(g_v), g_s
        else:
            update = g + alpha * np.linalg.norm(g) * direction
        w = [v - _LR * u for v, u in zip(w, _unflat(update, w))]
    for actual, wanted in zip(model.model.get_weights(), w):
        np.testing.assert_allclose(actual, wanted, atol=1e-5, rtol=0)
    # The stored direction is what the reference computed, and it matters: without
    # it the steps in between are plain ones, which end elsewhere.
    stored = _flat([np.array(v) for v in model.non_trainable_variables
                    if "sharpness_direction" in v.path])
    np.testing.assert_allclose(stored, direction, atol=1e-5, rtol=0)
    plain_interval, _, _ = _fixed_sam(rho=rho, interval=2)
    for _ in range(4):
        plain_interval.train_on_batch(_X, _Y, sample_weight=_SW)
    assert max(np.max(np.abs(a - b)) for a, b in zip(model.model.get_weights(),
                                                     plain_interval.model.get_weights())) > 1e-4


def test_sharpness_aware_minimization__looksam_two_replicas_equal_one_device():
    # Three steps: SAM (stores the direction), LookSAM (uses it), SAM.
    def train(strategy):
        keras.utils.set_random_seed(7)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = SAM(_mlp(), rho=0.2, interval=2, looksam_alpha=0.7)
            model.compile(**_sgd_mse())
            model.fit({key: np.concatenate([value] * 3) for key, value in _X.items()},
                      np.concatenate([_Y] * 3), batch_size=_N, epochs=1, shuffle=False,
                      verbose=0)
        return model

    one_device = train(None)
    two_replicas = train(testing.two_replica_strategy())
    assert int(one_device.optimizer.iterations.numpy()) == 3
    for actual, wanted in zip(two_replicas.weights, one_device.weights):
        np.testing.assert_allclose(np.array(actual), np.array(wanted), atol=1e-5, rtol=0,
                                   err_msg=actual.path)


# ------------------------------------------------------- BatchNorm and dropout


def _bn_net():
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6),
        keras.layers.BatchNormalization(momentum=0.5),
        keras.layers.ReLU(),
        keras.layers.Dropout(0.3, seed=3),
        keras.layers.Dense(3),
    ])


def test_sharpness_aware_minimization__state_advances_once_from_first_pass():
    x = _RNG.normal(size=(16, 5)).astype("float32")
    y = _RNG.integers(0, 3, size=(16,))
    keras.utils.set_random_seed(1)
    inner = _bn_net()
    reference = _bn_net()
    reference.set_weights(inner.get_weights())
    initial = [np.array(v) for v in inner.non_trainable_variables]
    model = SAM(inner, rho=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
    reference(x, training=True)  # one plain training-mode pass at the initial weights
    # BatchNorm moving statistics and the dropout seed state: exactly one update,
    # the one of the unperturbed pass.
    for actual, wanted, start in zip(inner.non_trainable_variables,
                                     reference.non_trainable_variables, initial):
        assert not np.array_equal(np.array(wanted), start)
        np.testing.assert_allclose(np.array(actual), np.array(wanted), atol=1e-6, rtol=0)


# ----------------------------------------------------------- mixed precision


def test_sharpness_aware_minimization__mixed_float16_uses_loss_scaling():
    def run(policy):
        with testing.dtype_policy(policy):
            model, _, _ = _fixed_sam(rho=0.05)
        model.train_on_batch(_X, _Y, sample_weight=_SW)
        return model

    mixed = run("mixed_float16")
    assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    for actual, wanted in zip(mixed.get_weights(), run("float32").get_weights()):
        np.testing.assert_allclose(actual, wanted, atol=5e-3, rtol=0)


def test_sharpness_aware_minimization__overflowing_loss_scale_skips_step_intact():
    # An overflowing scale makes the gradients non-finite. The step must be
    # skipped with the weights intact (no perturbation left behind).
    model, _, _ = _fixed_sam(loss_scale=1e38)
    before = model.get_weights()
    model.train_on_batch(_X, _Y * 1e3)
    for actual, wanted in zip(model.get_weights(), before):
        np.testing.assert_array_equal(actual, wanted)
    assert float(model.optimizer.dynamic_scale) == pytest.approx(0.5e38)


# ------------------------------------------------------------------ harness


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
@pytest.mark.parametrize("kwargs", [
    {"rho": 0.1},
    {"rho": 0.3, "num_batch_splits": 2, "adaptive": True, "interval": 2, "eta": 0.05},
    {"rho": 0.2, "interval": 2, "looksam_alpha": 0.5},
], ids=["sam", "asam_split_interval", "looksam"])
def test_sharpness_aware_minimization__harness(check, kwargs):
    testing.check_model(lambda: SAM(_mlp(), **kwargs), _sgd_mse, _X, _Y, checks=[check])


def test_sharpness_aware_minimization__model_and_call_delegate():
    inner = _mlp()
    model = SAM(inner)
    assert model.model is inner
    np.testing.assert_array_equal(model(_X), inner(_X))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rho": 0.0}, ValueError, "argument `rho`"),
    ({"rho": -1.0}, ValueError, "argument `rho`"),
    ({"num_batch_splits": 0}, ValueError, "argument `num_batch_splits`"),
    ({"num_batch_splits": 1.5}, TypeError, "argument `num_batch_splits`"),
    ({"interval": 0}, ValueError, "argument `interval`"),
    ({"adaptive": "yes"}, TypeError, "argument `adaptive`"),
    ({"eta": -0.1}, ValueError, "argument `eta`"),
    ({"interval": 5, "looksam_alpha": 0.0}, ValueError, "argument `looksam_alpha`"),
    ({"looksam_alpha": 0.7}, ValueError, r"argument `looksam_alpha`. .*needs `interval` > 1"),
    ({"interval": 5, "num_batch_splits": 2, "looksam_alpha": 0.7}, ValueError,
     "`num_batch_splits=None`"),
])
def test_sharpness_aware_minimization__bad_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        SAM(_mlp(), **kwargs)


def test_sharpness_aware_minimization__non_model():
    with pytest.raises(TypeError, match="argument `model`. Expected a `keras.Model`"):
        SAM(keras.layers.Dense(2))


def test_sharpness_aware_minimization__splits_not_dividing_batch():
    model = SAM(_mlp(), num_batch_splits=3)
    model.compile(**_sgd_mse())
    with pytest.raises(ValueError, match=r"argument `num_batch_splits`. Expected a divisor "
                                         r"of the batch size \(8"):
        model.train_on_batch(_X, _Y)


@pytest.mark.parametrize("looksam_alpha", [None, 0.5])
def test_sharpness_aware_minimization__unbuilt_inner_model_builds_in_fit(looksam_alpha):
    inner = keras.Sequential([keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    model = SAM(inner, interval=2, looksam_alpha=looksam_alpha)
    model.compile(**_sgd_mse())
    history = model.fit(_X["a"], _Y, batch_size=4, epochs=1, verbose=0)
    assert inner.built and np.isfinite(history.history["loss"][-1])
    if looksam_alpha is not None:
        # The buffers were created in the first trace and hold a unit direction.
        directions = [np.array(v) for v in model.non_trainable_variables
                      if "sharpness_direction" in v.path]
        assert len(directions) == len(inner.trainable_variables)
        assert np.sqrt(sum(np.sum(d ** 2) for d in directions)) == pytest.approx(1.0, abs=1e-5)
