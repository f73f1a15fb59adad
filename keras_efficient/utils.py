"""Helpers shared by every public object: registration for `.keras` files and
argument validation with one message template (Keras's own wording)."""

import numbers

import keras

#: Decorator for every public layer, loss, schedule, callback and model, so that
#: `keras.saving.load_model` finds them without `custom_objects`.
register = keras.saving.register_keras_serializable(package="keras_efficient")


def _describe_range(low, high, low_inclusive, high_inclusive):
    if high is None:
        return f"{'>=' if low_inclusive else '>'} {low}"
    if low is None:
        return f"{'<=' if high_inclusive else '<'} {high}"
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    return f"in {left}{low}, {high}{right}"


def validate_number(
    name,
    value,
    low=None,
    high=None,
    *,
    low_inclusive=True,
    high_inclusive=True,
    integer=False,
):
    """Return `value` if it is a number in the given range, else raise.

    Raises `TypeError` for a non-number (bools included) and `ValueError` for a
    number out of range, both naming the argument, the allowed range and the
    received value: "Invalid value received for argument `rate`. Expected a
    float value in [0, 1). Received: rate=1.5".
    """
    kind = "an integer" if integer else "a float value"
    expected = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, expected):
        raise TypeError(
            f"Invalid type received for argument `{name}`. Expected {kind}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        allowed = _describe_range(low, high, low_inclusive, high_inclusive)
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected {kind} "
            f"{allowed}. Received: {name}={value!r}"
        )
    return value


def validate_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise a `ValueError`."""
    if value not in choices:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected one of "
            f"{sorted(choices)}. Received: {name}={value!r}"
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
    return tf.random.Generator.from_seed(validate_number("seed", seed, integer=True))
