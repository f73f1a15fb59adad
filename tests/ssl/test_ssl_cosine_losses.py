import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.losses import BYOLLoss
from keras_efficient.losses import SimSiamLoss


def _cosine64(z, p):
    z = z.astype(np.float64)
    p = p.astype(np.float64)
    return np.sum(z * p, axis=1) / (np.linalg.norm(z, axis=1) * np.linalg.norm(p, axis=1))


def reference_byol(z, p):
    return float(np.mean(2.0 - 2.0 * _cosine64(z, p)))


def reference_simsiam(z, p):
    return float(np.mean(-_cosine64(z, p)))


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 5)).astype("float32"), rng.normal(size=(6, 5)).astype("float32")


@pytest.mark.parametrize("loss_cls, reference", [(BYOLLoss, reference_byol),
                                                 (SimSiamLoss, reference_simsiam)])
def test_cosine_losses__equal_float64_reference(loss_cls, reference):
    z, p = _pair()
    np.testing.assert_allclose(float(loss_cls()(z, p)), reference(z, p), atol=1e-6)


def test_byol_loss__equals_squared_distance_of_normalized_vectors():
    z, p = _pair(1)
    normalized = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in (z, p)]
    expected = np.mean(np.sum((normalized[0] - normalized[1]) ** 2, axis=1))
    np.testing.assert_allclose(float(BYOLLoss()(z, p)), expected, atol=1e-6)


@pytest.mark.parametrize("loss_cls", [BYOLLoss, SimSiamLoss])
def test_cosine_losses__target_gets_no_gradient(loss_cls):
    _, (gradient_z, gradient_p) = testing.gradients(loss_cls(), *_pair(2))
    assert np.all(gradient_z == 0)
    assert np.abs(gradient_p).max() > 1e-3


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
@pytest.mark.parametrize("loss_cls, reference", [(BYOLLoss, reference_byol),
                                                 (SimSiamLoss, reference_simsiam)])
def test_cosine_losses__harness(loss_cls, reference, check):
    z, p = _pair(3)
    testing.check_loss(loss_cls, {}, z, p, reference=reference, checks=[check])


@pytest.mark.parametrize("loss_cls", [BYOLLoss, SimSiamLoss])
def test_cosine_losses__reject_different_shapes(loss_cls):
    with pytest.raises(ValueError, match="must have the same shape"):
        loss_cls()(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
