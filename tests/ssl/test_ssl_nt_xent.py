import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.losses import NTXent


def reference_nt_xent(z_a, z_b, temperature):
    """SimCLR eq. 1 in float64: mean over the 2N anchors, 2N - 2 negatives each."""
    z = np.concatenate([z_a, z_b]).astype(np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z_a)
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        similarities = z @ z[i] / temperature
        denominator = sum(np.exp(similarities[k]) for k in range(2 * n) if k != i)
        losses.append(-np.log(np.exp(similarities[positive]) / denominator))
    return float(np.mean(losses))


def _views(n=8, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype("float32"), rng.normal(size=(n, dim)).astype("float32")


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_nt_xent__equals_float64_reference(temperature):
    z_a, z_b = _views()
    value = NTXent(temperature=temperature)(z_a, z_b)
    np.testing.assert_allclose(float(value), reference_nt_xent(z_a, z_b, temperature),
                               rtol=1e-5, atol=1e-5)


def test_nt_xent__uses_same_view_negatives():
    # Moving only a same-view embedding (a_1 relative to a_0) changes a_0's loss;
    # an implementation with only the N - 1 cross-view negatives would not see it.
    z_a, z_b = _views()
    moved = z_a.copy()
    moved[1] = z_a[0]
    per_pair = keras.ops.convert_to_numpy(NTXent(reduction=None)(z_a, z_b))
    per_pair_moved = keras.ops.convert_to_numpy(NTXent(reduction=None)(moved, z_b))
    assert abs(per_pair[0] - per_pair_moved[0]) > 1e-3


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_nt_xent__half_precision_inputs_are_finite_and_correct(dtype):
    z_a, z_b = _views(n=16, dim=32)
    half_a, half_b = keras.ops.cast(z_a, dtype), keras.ops.cast(z_b, dtype)
    value = float(NTXent(temperature=0.1)(half_a, half_b))
    rounded = [keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in (half_a, half_b)]
    assert np.isfinite(value)
    np.testing.assert_allclose(value, reference_nt_xent(*rounded, 0.1), rtol=1e-5)


@pytest.mark.tensorflow_only("tf.distribute replica contexts; on JAX the loss sees the "
                             "global batch (the on-two-devices test)")
def test_nt_xent__two_replicas_equal_one_device_loss_and_gradients():
    rng = np.random.default_rng(3)
    x_a, x_b = rng.normal(size=(2, 8, 6)).astype("float32")
    kernel = rng.normal(size=(6, 4)).astype("float32")
    loss_fn = NTXent(temperature=0.5)

    def loss_and_gradient(variable, a, b):
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.matmul(a, variable), tf.matmul(b, variable))
        return loss, tape.gradient(loss, variable)

    single = tf.Variable(kernel)
    expected_loss, expected_gradient = loss_and_gradient(single, x_a, x_b)

    strategy = testing.two_replica_strategy()
    with strategy.scope():
        mirrored = tf.Variable(kernel)

    def shard(array):
        return strategy.experimental_distribute_values_from_function(
            lambda context: array[context.replica_id_in_sync_group * 4:][:4])

    @tf.function
    def replicated(a, b):
        # As `fit` does: every replica's loss is pre-divided by the replica count
        # (Keras's reduction), then losses and gradients are summed.
        losses, gradients = strategy.run(loss_and_gradient, args=(mirrored, a, b))
        return (strategy.reduce("SUM", losses, axis=None),
                strategy.reduce("SUM", gradients, axis=None))

    loss, gradient = replicated(shard(x_a), shard(x_b))
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-6)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), atol=1e-6)
    assert np.abs(expected_gradient.numpy()).max() > 1e-3


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's DataParallel layout")
def test_nt_xent__batch_split_over_two_devices_equals_one_device_loss_and_gradients():
    # JAX: the loss runs on the global batch laid out over two devices (as under
    # `DataParallel`); its negatives are the whole batch, not each device's half.
    rng = np.random.default_rng(3)
    x_a, x_b = rng.normal(size=(2, 8, 6)).astype("float32")
    kernel = rng.normal(size=(6, 4)).astype("float32")
    loss_fn = NTXent(temperature=0.5)

    def loss_of_kernel(w, a, b):
        return loss_fn(keras.ops.matmul(a, w), keras.ops.matmul(b, w))

    import jax

    loss, gradient = testing.on_two_devices(
        lambda a, b: jax.value_and_grad(loss_of_kernel)(kernel, a, b), x_a, x_b)
    _, (expected_gradient,) = testing.gradients(
        lambda w: loss_of_kernel(w, x_a, x_b), kernel)
    np.testing.assert_allclose(loss, reference_nt_xent(x_a @ kernel, x_b @ kernel, 0.5),
                               rtol=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, atol=1e-6)
    halves = np.mean([reference_nt_xent(x_a[i:i + 4] @ kernel, x_b[i:i + 4] @ kernel, 0.5)
                      for i in (0, 4)])
    assert abs(halves - float(loss)) > 1e-2


@pytest.mark.tensorflow_only("uneven per-replica batches exist only under tf.distribute")
def test_nt_xent__uneven_replica_batches_give_one_device_loss():
    x_a, x_b = _views(n=7, dim=4, seed=5)
    strategy = testing.two_replica_strategy()
    loss_fn = NTXent(temperature=0.5, reduction="sum")

    def shard(array):
        return strategy.experimental_distribute_values_from_function(
            lambda context: array[:4] if context.replica_id_in_sync_group == 0 else array[4:])

    @tf.function
    def replicated(a, b):
        return strategy.reduce("SUM", strategy.run(loss_fn, args=(a, b)), axis=None)

    # reduction="sum" is the sum over this replica's pairs: the global sum over
    # pairs is 7 times the mean over anchors.
    np.testing.assert_allclose(float(replicated(shard(x_a), shard(x_b))) / 7,
                               reference_nt_xent(x_a, x_b, 0.5), rtol=1e-5)


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_nt_xent__harness(check):
    z_a, z_b = _views()
    testing.check_loss(NTXent, {"temperature": 0.5}, z_a, z_b, checks=[check],
                       reference=lambda a, b: reference_nt_xent(a, b, 0.5))


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_nt_xent__rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="argument `temperature`. Expected a float value > 0"):
        NTXent(temperature=temperature)


def test_nt_xent__rejects_views_of_different_shapes():
    with pytest.raises(ValueError, match="must have the same shape"):
        NTXent()(np.zeros((4, 3), "float32"), np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match=r"of shape \(batch_size, dim\)"):
        NTXent()(np.zeros((4, 3, 2), "float32"), np.zeros((4, 3, 2), "float32"))
