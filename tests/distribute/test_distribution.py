"""`get_distribution`: JAX's data parallelism over every device, one-device results."""

import contextlib

import keras
import numpy as np
import pytest

import keras_efficient as ke


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's keras.distribution")
def test_get_distribution__data_parallel_over_all_devices_equals_one_device():
    import jax

    distribution = ke.distribute.get_distribution()
    assert isinstance(distribution, keras.distribution.DataParallel)
    assert distribution.device_mesh.devices.size == len(jax.devices()) == 2
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")

    def train(scope):
        keras.utils.set_random_seed(0)
        with scope:
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model.get_weights()



    for actual, wanted in zip(train(distribution.scope()), train(contextlib.nullcontext())):
        np.testing.assert_allclose(actual, wanted, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the TensorFlow backend's error")
def test_get_distribution__on_tensorflow_names_get_strategy():
    with pytest.raises(RuntimeError, match=r"get_strategy\(\)"):
        ke.distribute.get_distribution()
