import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.layers import ProjectionHead

X = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")


def test_projection_head__equals_numpy_mlp_in_inference():
    head = ProjectionHead(hidden_dims=(5, 4), output_dim=3, batch_norm=True)
    head(X)
    for layer in head._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.weights[0].path))
            layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()[:2]]
                              + [rng.normal(size=w.shape) for w in layer.get_weights()[2:3]]
                              + [rng.uniform(0.5, 2, size=w.shape)
                                 for w in layer.get_weights()[3:]])
    x = X.astype(np.float64)
    for dense, norm, _ in head.blocks:
        kernel, = dense.get_weights()
        gamma, beta, mean, variance = norm.get_weights()
        x = x @ kernel
        x = np.maximum(gamma * (x - mean) / np.sqrt(variance + norm.epsilon) + beta, 0)
    kernel, bias = head.output_dense.get_weights()
    np.testing.assert_allclose(head(X, training=False), x @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_projection_head__harness(check):
    kwargs = {"hidden_dims": (16, 8), "output_dim": 4, "output_batch_norm": True}
    # Synchronized BatchNorm: two replicas equal one device, statistics included.
    testing.check_layer(ProjectionHead, kwargs, X, checks=[check])


@pytest.mark.parametrize("kwargs, match", [
    ({"output_dim": 0}, "argument `output_dim`"),
    ({"hidden_dims": 256}, "argument `hidden_dims`"),
    ({"hidden_dims": 2.5}, "argument `hidden_dims`"),
    ({"hidden_dims": (256, -1)}, "argument `hidden_dims`"),
])
def test_projection_head__rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectionHead(**kwargs)


def test_projection_head__linear_head_without_batch_norm_is_one_dense():
    head = ProjectionHead(hidden_dims=(), output_dim=4, batch_norm=False)
    kernel, bias = [np.asarray(w) for w in (head(X), head.output_dense.get_weights())[1]]
    np.testing.assert_allclose(head(X), X @ kernel + bias, atol=1e-5)
    assert len(head.weights) == 2
