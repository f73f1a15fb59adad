"""Helpers shared by every public object: registration for `.keras` files and
argument validation with one message template (Keras's own wording)."""

import math
import numbers
import os

import keras

_register_serializable = keras.saving.register_keras_serializable(package="keras_efficient")

#: Every declared public path ("keras_efficient.layers.DropBlock2D") and its
#: object, filled by `register` and `export` where the objects are defined;
#: `tests/test_namespaces.py` checks that each namespace module imports
#: exactly the names declared under it.
PUBLIC_API = {}


def export(*paths):
    """Declare the public paths of a function, class or constant, as `keras_export` does.

    `@export("keras_efficient.layers.stochastic_depth_survival")` above the
    definition, or `export("keras_efficient.data.TFDS_DATASETS")(TFDS_DATASETS)`
    for a constant; the namespace module (`keras_efficient/layers.py`) imports
    the name. Returns the object unchanged.
    """
    for path in paths:
        if not (isinstance(path, str) and path.startswith("keras_efficient.")):
            raise ValueError(
                "Invalid value received for argument `paths`. Expected public paths "
                f"such as 'keras_efficient.layers.DropBlock2D'. Received: {path!r}")

    def declare(obj):
        for path in paths:
            PUBLIC_API[path] = obj
        return obj

    return declare


def register(*paths):
    """Register a class for `.keras` files and declare its public paths.

    `@register("keras_efficient.layers.DropBlock2D")` above a public layer,
    loss, schedule, callback or model: `keras.saving.load_model` then finds it
    without `custom_objects` (as "keras_efficient>DropBlock2D"), and the path
    is declared as with `export`. Bare `@register` registers a class that is
    saved inside others but has no public path.
    """
    if len(paths) == 1 and not isinstance(paths[0], str):
        return _register_serializable(paths[0])

    def declare(cls):
        return export(*paths)(_register_serializable(cls))

    return declare


def _describe_range(low, high, low_inclusive, high_inclusive):
    if high is None:
        return f"{'>=' if low_inclusive else '>'} {low}"
    if low is None:
        return f"{'<=' if high_inclusive else '<'} {high}"
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    return f"in {left}{low}, {high}{right}"


#: The largest float32: a float argument beyond it becomes inf once it is cast
#: into a tensor, so it counts as infinite here.
MAX_FLOAT32 = 3.4028234663852886e38


def validate_number(
    name,
    value,
    low=None,
    high=None,
    *,
    low_inclusive=True,
    high_inclusive=True,
    integer=False,
    allow_nan=False,
    allow_inf=False,
):
    """Return `value` if it is a number in the given range, else raise.

    Raises `TypeError` for a non-number (bools included) and `ValueError` for a
    number out of range, both naming the argument, the allowed range and the
    received value: "Invalid value received for argument `rate`. Expected a
    float value in [0, 1). Received: rate=1.5". NaN and +-inf are rejected
    (every comparison with NaN is False, so a range alone lets it through)
    unless the caller allows them with `allow_nan=True` / `allow_inf=True`; so
    is a float beyond float32's range, which becomes inf in a tensor.
    """
    kind = "an integer" if integer else "a float value"
    expected = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, expected):
        raise TypeError(
            f"Invalid type received for argument `{name}`. Expected {kind}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    allowed = ""
    if low is not None or high is not None:
        allowed = " " + _describe_range(low, high, low_inclusive, high_inclusive)
    if not integer:
        is_nan = math.isnan(value)
        infinite = math.isinf(value) or (not is_nan and abs(value) > MAX_FLOAT32)
        if (is_nan and not allow_nan) or (infinite and not allow_inf):
            raise ValueError(
                f"Invalid value received for argument `{name}`. Expected a finite "
                f"float value{allowed}. Received: {name}={value!r}"
            )
        if is_nan:
            return value
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected {kind}"
            f"{allowed}. Received: {name}={value!r}"
        )
    return value


#: Default upper limit of `validate_size`: the largest int32, the index type of
#: most kernels, so a size beyond it fails here instead of deep inside an op.
MAX_SIZE = 2**31 - 1


def validate_size(name, value, low=1, high=MAX_SIZE):
    """Return `value` if it is an integer that sizes an allocation, else raise.

    Block counts, steps, buffer and batch sizes: an integer in [`low`, `high`],
    so a typo such as `1e12` fails at once instead of in a huge allocation or
    an endless build. Callers pass a tighter `high` where one is meaningful.
    """
    # Two checks, so a value too small reads "an integer >= low" as before.
    validate_number(name, value, low, integer=True)
    return validate_number(name, value, high=high, integer=True)


#: Seeds are 32-bit, the range that NumPy, TensorFlow and JAX all accept.
MAX_SEED = 2**32 - 1


def validate_seed(name, value, allow_none=True):
    """Return `value` if it is a seed: an integer in [0, 2**32 - 1] (or None)."""
    if value is None and allow_none:
        return value
    return validate_number(name, value, 0, MAX_SEED, integer=True)


def validate_path(name, value, allow_none=False):
    """Return `value` as a `str` if it is a non-empty path (`str`/`os.PathLike`)."""
    if value is None and allow_none:
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"Invalid type received for argument `{name}`. Expected a path "
            f"(str or os.PathLike). Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a non-empty "
            f"path. Received: {name}={value!r}"
        )
    return path


def validate_key(name, value):
    """Return `value` if it is a non-empty string (a metric name, a dict key)."""
    if not isinstance(value, str):
        raise TypeError(
            f"Invalid type received for argument `{name}`. Expected a non-empty string. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if not value:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a non-empty string. "
            f"Received: {name}={value!r}"
        )
    return value


def validate_callable(name, value, allow_none=False):
    """Return `value` if it is callable (or None where allowed), else raise."""
    if (value is None and allow_none) or callable(value):
        return value
    raise TypeError(
        f"Invalid type received for argument `{name}`. Expected a callable"
        f"{' or None' if allow_none else ''}. Received: {name}={value!r} of type "
        f"{type(value).__name__}"
    )


def validate_range(name, value, low=None, high=None):
    """Return `value` as a float pair `(a, b)` with `low < a <= b <= high`, else raise.

    For arguments that are an interval (a crop's `scale`, an aspect `ratio`, a
    `value_range`); `low` is exclusive, `high` inclusive, either may be None.
    """
    valid = (isinstance(value, (tuple, list)) and len(value) == 2
             and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                     and abs(v) <= MAX_FLOAT32 for v in value)
             and (low is None or low < value[0]) and value[0] <= value[1]
             and (high is None or value[1] <= high))
    if not valid:
        bounds = ("" if low is None else f"{low} < ") + "low <= high" + (
            "" if high is None else f" <= {high}")
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a pair (low, high) "
            f"of finite floats with {bounds}. Received: {name}={value!r}"
        )
    return tuple(float(v) for v in value)


def validate_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise a `ValueError`."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value (a list) cannot be in a set of choices
        known = False
    if isinstance(value, bool):  # True == 1: a bool is only a choice if listed as one
        known = any(choice is value for choice in choices)
    if not known:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected one of "
            f"{sorted(choices, key=repr)}. Received: {name}={value!r}"
        )
    return value


def random_generator(seed):
    """A `tf.random.Generator` for `tf.data` transforms: seeded, or nondeterministic.

    A generator's state advances on every call, also inside `dataset.map` (which
    traces the function once), so each batch draws anew; its draws seed the
    stateless ops that do the work.

    Args:
        seed: an integer, or None for a nondeterministic generator.
    """
    import tensorflow as tf

    if seed is None:
        return tf.random.Generator.from_non_deterministic_state()
    return tf.random.Generator.from_seed(validate_seed("seed", seed))


class RestoresCompile:
    """Mixin for models with their own `compile`: `.keras` loading compiles through it.

    Keras's `Model.compile_from_config` skips a `compile` the model overrides
    (it cannot know its arguments); a model whose `compile` takes the arguments
    it saved (those of `get_compile_config`) derives from this mixin first.
    """

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


def from_config_with_layers(cls, config, *keys):
    """`cls(**config)` with the nested layers or models under `keys` deserialized.

    The `from_config` of every model that wraps others (SAM's model, a
    distiller's teacher and student, an encoder); a key whose value is None
    stays None.
    """
    config = dict(config)
    for key in keys:
        if config.get(key) is not None:
            config[key] = keras.saving.deserialize_keras_object(config[key])
    return cls(**config)
