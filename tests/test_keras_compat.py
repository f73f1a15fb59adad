"""Private Keras API is used through `keras_efficient.backend.keras_compat` only.

The grep tests fail when a module reaches into Keras's internals itself; the
existence tests fail first when a Keras upgrade moves one of them (run this
file first on a new Keras: CONTRIBUTING.md, "Keras versions").
"""

import pathlib
import re

import keras
import pytest

import keras_efficient
from keras_efficient.backend import keras_compat

_PACKAGE = pathlib.Path(keras_efficient.__file__).parent
_COMPAT = pathlib.Path(keras_compat.__file__)

#: Private attributes of Keras objects (models, layers, optimizers, trackers,
#: the TensorFlow trainer) that `keras_compat` wraps.
_PRIVATE_KERAS_ATTRIBUTES = (
    "_aggregate_additional_loss", "_collective_all_reduce_multi_worker", "_compile_loss",
    "_compute_loss", "_distribute_strategy", "_flatten_layers", "_get_seed_generator",
    "_initial_epoch", "_learning_rate", "_loss_tracker", "_maybe_symbolic_build",
    "_symbolic_build", "_tracker",
)


def _package_sources():
    return [path for path in sorted(_PACKAGE.rglob("*.py")) if path != _COMPAT]


def _allowed_override(path, line):
    """A line that defines or calls up to a private method a package class overrides."""
    relative = str(path.relative_to(_PACKAGE.parent))
    return any(relative == module and re.search(rf"(def |super\(\)\.){method}\(", line)
               for _, method, module in keras_compat.OVERRIDDEN_METHODS)


def test_keras_compat__is_the_only_importer_of_keras_src():
    offenders = [f"{path.relative_to(_PACKAGE.parent)}:{number}: {line.strip()}"
                 for path in _package_sources()
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"\bkeras\.src\b", line)]
    assert not offenders, (
        "import private Keras API from keras_efficient.backend.keras_compat (add it "
        "there, with what it is for and what to check on a Keras upgrade):\n"
        + "\n".join(offenders))


def test_keras_compat__is_the_only_user_of_private_keras_attributes():
    pattern = re.compile(r"\.(" + "|".join(_PRIVATE_KERAS_ATTRIBUTES) + r")\b")
    offenders = [f"{path.relative_to(_PACKAGE.parent)}:{number}: {line.strip()}"
                 for path in _package_sources()
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line.split("#")[0]) and not _allowed_override(path, line)]
    assert not offenders, (
        "reach private Keras attributes through a function of "
        "keras_efficient.backend.keras_compat:\n" + "\n".join(offenders))


def test_keras_compat__private_keras_attributes_still_exist():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    for attribute in ("_compile_loss", "_loss_tracker", "_tracker", "_initial_epoch"):
        assert hasattr(model, attribute), attribute
    if keras.backend.backend() == "tensorflow":  # the TensorFlow trainer's only
        assert keras_compat.distribute_strategy_or_none(model) is None
    assert keras_compat.flatten_layers(model)
    assert keras_compat.learning_rate_object(model.optimizer) is not None
    assert callable(keras_compat.compiled_loss(model))
    layer = keras.layers.RandomFlip()
    assert isinstance(layer, keras_compat.DataLayer)
    assert keras_compat.seed_generator(layer) is not None
    assert callable(keras_compat.tensorflow_trainer._collective_all_reduce_multi_worker)
    for owner, method, _ in keras_compat.OVERRIDDEN_METHODS:
        assert callable(getattr(owner, method, None)), f"{owner.__name__}.{method}"


@pytest.mark.parametrize("attribute", ["_maybe_symbolic_build", "_symbolic_build"])
def test_keras_compat__trainer_methods_still_exist(attribute):
    assert callable(getattr(keras_compat.tensorflow_trainer.TensorFlowTrainer, attribute))


def test_keras_compat__additional_loss_scales_as_fit_does():
    # One replica: the regularization loss unchanged (cast to the model's dtype).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L2(0.5))])
    expected = 0.5 * 2.0  # 0.5 * sum(ones(2, 1) ** 2)
    (loss,) = model.losses
    assert float(keras_compat.additional_loss(model, loss)) == pytest.approx(expected)
    assert float(keras_compat.unscale_loss_for_distribution(
        keras_compat.scale_loss_for_distribution(3.0))) == pytest.approx(3.0)
