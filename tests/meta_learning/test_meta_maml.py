import keras
import numpy as np
import pytest

import keras_efficient as ke
from keras_efficient import testing
from keras_efficient.meta_learning.maml import MAML
from keras_efficient.meta_learning.reptile import Reptile

_JAX = keras.backend.backend() == "jax"
_MODEL_CHECKS = [check for check in testing.MODEL_CHECKS if not (_JAX and check == "replicas")]


@pytest.fixture
def float64():
    if _JAX:
        import jax

        jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    if _JAX:
        jax.config.update("jax_enable_x64", False)


def _numpy(variables):
    return [keras.ops.convert_to_numpy(variable).astype("float64") for variable in variables]


def _classification_episodes(input_shape, meta_batch_size=2, n_way=2, n_shot=2, n_query=2,
                             seed=0):
    rng = np.random.default_rng(seed)
    support_x = rng.normal(size=(meta_batch_size, n_way * n_shot) + input_shape)
    query_x = rng.normal(size=(meta_batch_size, n_way * n_query) + input_shape)
    support_y = np.tile(np.repeat(np.arange(n_way), n_shot), (meta_batch_size, 1))
    query_y = np.tile(np.repeat(np.arange(n_way), n_query), (meta_batch_size, 1))
    dtype = keras.config.floatx()
    return (support_x.astype(dtype), support_y.astype("int32"),
            query_x.astype(dtype)), query_y.astype("int32")


def _dense_learner():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "sigmoid"),
                             keras.layers.Dense(2)])


def _conv_learner(batch_norm=False):
    layers = [keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, activation="sigmoid")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.Flatten(), keras.layers.Dense(2)]
    return keras.Sequential(layers)


_LEARNERS = {
    "dense": (_dense_learner, (3,)),
    "conv": (_conv_learner, (5, 5, 1)),
}


def _meta_gradient(meta_learner, x, y, loss, jit_compile=False):
    """The gradient that `fit` applies: one SGD step with learning rate 1."""
    meta_learner.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=loss,
                         jit_compile=jit_compile)
    before = _numpy(meta_learner.trainable_variables)
    meta_learner.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    return [old - new for old, new in zip(before, _numpy(meta_learner.trainable_variables))]


def _finite_difference_slopes(meta_learner, x, y, directions, epsilon=1e-5):
    """Central differences of the meta-loss (query loss after adaptation) along
    `directions` (one array per trainable variable, for each direction)."""
    variables = meta_learner.trainable_variables
    values = _numpy(variables)

    def meta_loss(step):
        for variable, value, delta in zip(variables, values, step):
            variable.assign(value + delta)
        y_pred = meta_learner(tuple(keras.ops.convert_to_tensor(part) for part in x),
                              training=True)
        return float(meta_learner.compute_loss(y=keras.ops.convert_to_tensor(y),
                                               y_pred=y_pred))

    slopes = []
    for direction in directions:
        forward = meta_loss([epsilon * part for part in direction])
        backward = meta_loss([-epsilon * part for part in direction])
        slopes.append((forward - backward) / (2 * epsilon))
    meta_loss([0.0 * value for value in values])  # restore
    return np.array(slopes)


@pytest.mark.parametrize("inner_steps", [1, 3])
@pytest.mark.parametrize("learner", ["dense", "conv"])
def test_maml__second_order_meta_gradient_equals_finite_differences(float64, learner,
                                                                     inner_steps):
    make_learner, input_shape = _LEARNERS[learner]
    x, y = _classification_episodes(input_shape)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    keras.utils.set_random_seed(0)
    maml = MAML(make_learner(), inner_learning_rate=0.5, inner_steps=inner_steps)
    maml.compile(loss=loss)
    # Random directions and every coordinate axis of the first kernel.
    rng = np.random.default_rng(1)
    shapes = [value.shape for value in _numpy(maml.trainable_variables)]
    directions = [[rng.normal(size=shape) for shape in shapes] for _ in range(3)]
    for index in range(shapes[0][-1]):
        axis = [np.zeros(shape) for shape in shapes]
        axis[0][..., index] = 1.0
        directions.append(axis)
    expected = _finite_difference_slopes(maml, x, y, directions)
    gradient = _meta_gradient(maml, x, y, loss)
    actual = [sum(np.sum(g * d) for g, d in zip(gradient, direction))
              for direction in directions]
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)


def _linear_regression_tasks(meta_batch_size=2, n_shot=4, n_query=3, seed=1):
    rng = np.random.default_rng(seed)
    support_x = rng.normal(size=(meta_batch_size, n_shot, 2))
    query_x = rng.normal(size=(meta_batch_size, n_query, 2))
    support_y = rng.normal(size=(meta_batch_size, n_shot))
    query_y = rng.normal(size=(meta_batch_size, n_query))
    return (support_x, support_y, query_x), query_y


def _linear_learner():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def _mse_gradient(x, y, w):
    """Gradient of mean((x w - y)^2) for x with a bias column, and its Hessian."""
    residual = x @ w - y
    return 2 * x.T @ residual / len(y), 2 * x.T @ x / len(y)


def _with_bias(x):
    return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)


def _reference_linear_maml(learner, x, y, rate, inner_steps):
    """MAML on linear regression in float64 numpy: (second order, first order, phis)."""
    kernel, bias = _numpy(learner.trainable_variables)
    theta = np.concatenate([kernel[:, 0], bias])
    second, first, phis = [], [], []
    for support_x, support_y, query_x, query_y in zip(*x, y):
        phi, jacobian = theta, np.eye(len(theta))
        for _ in range(inner_steps):
            gradient, hessian = _mse_gradient(_with_bias(support_x), support_y, phi)
            phi, jacobian = phi - rate * gradient, (np.eye(len(theta)) - rate * hessian) @ jacobian
        query_gradient, _ = _mse_gradient(_with_bias(query_x), query_y, phi)
        second.append(jacobian.T @ query_gradient)
        first.append(query_gradient)
        phis.append(phi)
    return np.mean(second, axis=0), np.mean(first, axis=0), phis


def _flat(weights):
    return np.concatenate([np.ravel(weight) for weight in weights])


@pytest.mark.parametrize("inner_steps", [1, 3])
def test_maml__first_order_drops_the_hessian_term_of_an_explicit_computation(
        float64, inner_steps):
    x, y = _linear_regression_tasks()
    second, first, phis = _reference_linear_maml(_linear_learner(), x, y, 0.1, inner_steps)
    assert np.abs(second - first).max() > 1e-3  # the Hessian term matters here
    for first_order, expected in [(False, second), (True, first)]:
        maml = MAML(_linear_learner(), 0.1, inner_steps, first_order=first_order)
        np.testing.assert_allclose(_flat(_meta_gradient(maml, x, y, "mse")), expected,
                                   rtol=1e-7, atol=1e-12)
    # `adapt` runs the same inner loop on one task; the meta-weights stay.
    learner = _linear_learner()
    maml = MAML(learner, 0.1, inner_steps)
    maml.compile(loss="mse")
    adapted = maml.adapt(x[0][0], x[1][0])
    np.testing.assert_allclose(_flat(_numpy(adapted.trainable_variables)), phis[0],
                               rtol=1e-12)
    np.testing.assert_allclose(_flat(_numpy(learner.trainable_variables)),
                               _flat(_numpy(_linear_learner().trainable_variables)))


def test_maml__meta_sgd_learns_per_parameter_inner_rates(float64):
    x, y = _linear_regression_tasks()
    theta = _flat(_numpy(_linear_learner().trainable_variables))
    second, _, _ = _reference_linear_maml(_linear_learner(), x, y, 0.1, 1)
    # d query_loss(theta - alpha * g_support) / d alpha = -g_support * g_query(phi).
    rate_gradients = []
    for support_x, support_y, query_x, query_y in zip(*x, y):
        support_gradient, _ = _mse_gradient(_with_bias(support_x), support_y, theta)
        phi = theta - 0.1 * support_gradient
        query_gradient, _ = _mse_gradient(_with_bias(query_x), query_y, phi)
        rate_gradients.append(-support_gradient * query_gradient)
    meta_sgd = MAML(_linear_learner(), 0.1, 1, learn_inner_learning_rates=True)
    assert len(meta_sgd.trainable_variables) == 4
    gradients = dict(zip([variable.path for variable in meta_sgd.trainable_variables],
                         _meta_gradient(meta_sgd, x, y, "mse")))
    learner_gradients = [gradients[v.path] for v in meta_sgd.model.trainable_variables]
    rate_gradient = [gradients[v.path] for v in meta_sgd.inner_learning_rates]
    np.testing.assert_allclose(_flat(learner_gradients), second, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(_flat(rate_gradient), np.mean(rate_gradients, axis=0),
                               rtol=1e-7, atol=1e-12)


def test_reptile__step_moves_towards_the_mean_adapted_weights(float64):
    x, y = _linear_regression_tasks()
    learner = _linear_learner()
    theta = _flat(_numpy(learner.trainable_variables))
    _, _, phis = _reference_linear_maml(learner, x, y, 0.1, 3)
    reptile = Reptile(learner, inner_learning_rate=0.1, inner_steps=3, meta_step_size=0.25)
    gradient = _flat(_meta_gradient(reptile, x, y, "mse"))
    np.testing.assert_allclose(gradient, 0.25 * (theta - np.mean(phis, axis=0)), rtol=1e-7,
                               atol=1e-12)


_META_LEARNERS = {
    "maml": lambda: MAML(_dense_learner(), inner_learning_rate=0.5, inner_steps=2),
    "meta_sgd_first_order": lambda: MAML(_dense_learner(), 0.5, 2, first_order=True,
                                         learn_inner_learning_rates=True),
    "reptile": lambda: Reptile(_dense_learner(), 0.5, 2, meta_step_size=0.5),
}


# Meta-SGD shares MAML's code paths for jit and bfloat16 (checked on MAML and Reptile).
_HARNESS_CASES = [(name, check) for name in sorted(_META_LEARNERS) for check in _MODEL_CHECKS
                  if not (name == "meta_sgd_first_order" and check in ("jit", "bfloat16"))]


@pytest.mark.parametrize("name, check", _HARNESS_CASES)
def test_meta_learners__harness(name, check):
    # A meta-batch of 4 tasks: 2 per replica in the `replicas` check.
    x, y = _classification_episodes((3,), meta_batch_size=4)
    testing.check_model(
        _META_LEARNERS[name],
        lambda: {"optimizer": keras.optimizers.SGD(learning_rate=0.1),
                 "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 "metrics": ["accuracy"]},
        x, y, checks=[check],
    )


def test_maml__fits_episode_datasets_and_predicts_adapted_queries():
    keras.utils.set_random_seed(0)
    maml = ke.models.MAML(_dense_learner(), inner_learning_rate=0.5, inner_steps=1)
    maml.compile(optimizer="sgd",
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(30, 3)).astype("float32")
    episodes = ke.data.episode_dataset(x, np.repeat(np.arange(3), 10), n_way=2, n_shot=2,
                                       n_query=3, meta_batch_size=2, num_episodes=4, seed=0)
    maml.fit(episodes, epochs=1, verbose=0)
    assert maml.predict(episodes, verbose=0).shape == (4, 6, 2)
    (support_x, support_y, query_x), _ = next(iter(episodes))
    adapted = maml.adapt(support_x[0], support_y[0])
    predictions = maml.predict(episodes, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(adapted(query_x[0])),
                               predictions[0], atol=1e-5)
    # The same episodes in meta-batches of 4: Keras retraces with a relaxed (None)
    # meta-batch axis, which inference supports.
    regrouped = ke.data.episode_dataset(x, np.repeat(np.arange(3), 10), n_way=2, n_shot=2,
                                        n_query=3, meta_batch_size=4, num_episodes=4, seed=0)
    np.testing.assert_allclose(maml.predict(regrouped, verbose=0), predictions, atol=1e-5)


def test_maml__second_order_refuses_batch_norm():
    with pytest.raises(ValueError, match="argument `model`.*BatchNormalization"):
        MAML(_conv_learner(batch_norm=True))
    MAML(_conv_learner(batch_norm=True), first_order=True)
    Reptile(_conv_learner(batch_norm=True))


@pytest.mark.parametrize(
    "make, error, argument",
    [
        (lambda: MAML(keras.Sequential([keras.layers.Dense(2)])), ValueError, "model"),
        (lambda: MAML(keras.layers.Dense(2)), TypeError, "model"),
        (lambda: MAML(_dense_learner(), inner_steps=0), ValueError, "inner_steps"),
        (lambda: MAML(_dense_learner(), inner_steps=1.5), TypeError, "inner_steps"),
        (lambda: MAML(_dense_learner(), inner_learning_rate=0.0), ValueError,
         "inner_learning_rate"),
        (lambda: Reptile(_dense_learner(), meta_step_size=1.5), ValueError, "meta_step_size"),
        (lambda: MAML(_dense_learner()).adapt(np.zeros((2, 3)), np.zeros(2), steps=0),
         ValueError, "steps"),
    ],
)
def test_maml__bad_input_names_the_argument(make, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        make()


def test_maml__frozen_model_and_missing_loss_raise():
    frozen = _dense_learner()
    frozen.trainable = False
    with pytest.raises(ValueError, match="no trainable weights"):
        MAML(frozen)
    with pytest.raises(ValueError, match="compile"):
        MAML(_dense_learner()).adapt(np.zeros((2, 3), "float32"), np.zeros(2, "int32"))
