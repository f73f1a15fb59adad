"""Peers' argument names in the peers' positional order, where the meaning is the same.

A peer's positional prefix must be ours; arguments only we have come after it
(keyword-only where a positional call could otherwise change meaning).
"""

import inspect

import keras
import numpy as np
import pytest

import keras_efficient as ke


def _positional(cls):
    return [name for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind == parameter.POSITIONAL_OR_KEYWORD]


def _peer(module, path):
    peer = pytest.importorskip(module)
    for name in path.split("."):
        peer = getattr(peer, name)
    return peer


@pytest.mark.parametrize("ours, module, path, prefix", [
    (ke.layers.DropBlock2D, "keras_cv", "layers.DropBlock2D", 3),
    (ke.losses.NTXent, "keras_cv", "losses.SimCLRLoss", 1),
    (ke.models.SharpnessAwareMinimization, "tf_keras",
     "models.experimental.SharpnessAwareMinimization", 3),
    (ke.losses.SparseCategoricalCrossentropy, "keras", "losses.SparseCategoricalCrossentropy",
     None),
    (ke.callbacks.ReduceLROnPlateau, "keras", "callbacks.ReduceLROnPlateau", None),
    (ke.models.Distiller, "keras", "distillation.Distiller", 2),
])
def test_public_objects__peer_positional_order(ours, module, path, prefix):
    theirs = _positional(_peer(module, path))
    theirs = theirs if prefix is None else theirs[:prefix]
    assert _positional(ours)[:len(theirs)] == theirs


def test_sparse_categorical_crossentropy__keras_positional_ignore_class():
    y_true, logits = np.array([0, 2, 1]), np.log(np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]], "float32"))
    ours = ke.losses.SparseCategoricalCrossentropy(True, 2)(y_true, logits)
    theirs = keras.losses.SparseCategoricalCrossentropy(True, 2)(y_true, logits)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)
    with pytest.raises(TypeError, match="argument `ignore_class`"):
        ke.losses.SparseCategoricalCrossentropy(True, 0.1)  # a smoothing passed positionally


@pytest.mark.parametrize("kwargs", [
    {"student_loss_weight": 0.5},
    {"distillation_losses": keras.distillation.LogitsDistillation(temperature=3.0)},
])
def test_distiller__keras_core_arguments_get_an_error_saying_what_to_write(kwargs):
    def mlp():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    with pytest.raises(TypeError, match="alpha=a"):
        ke.models.Distiller(mlp(), mlp(), **kwargs)
    with pytest.raises(TypeError, match="not `keras.distillation.Distiller`"):
        ke.models.Distiller(mlp(), mlp(), keras.distillation.LogitsDistillation())
