"""Pacing functions for curriculum learning: the fraction p(t) of the
difficulty-sorted training set that is enabled at training step t.

Every pacing function returns p(t) in (0, 1], non-decreasing in t, with
p(total_steps) = 1 (the book: "If we train for a total of n epochs, then p(n)
should be 1.0").

- Wu, Dyer & Neyshabur 2021, "When do curricula work?" (Table 2): `linear`,
  `quadratic`, `root`, `step`, `exponential`, `logarithmic`, each with a
  starting fraction b and the fraction a of training after which all the data
  is used. With N examples and T steps, e.g. linear: N·b + N(1-b)/(aT)·t,
  clipped at N.
- Hacohen & Weinshall 2019, "On the Power of Curriculum Learning in Training
  Deep Networks": fixed exponential pacing, min(1, s·inc^⌊t/L⌋) with starting
  fraction s, increase inc and step length L; varied exponential pacing, the
  same with a list of step lengths.

The objects are `LearningRateSchedule`s only so that they serialize, run in
graphs and pass the shared schedule harness like any Keras schedule; they are
meant for `CurriculumDataset`, not as learning rates.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_efficient.backend import float64_scope
from keras_efficient.utils import export
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

WU_KINDS = ("linear", "quadratic", "root", "step", "exponential", "logarithmic")


@export("keras_efficient.curriculum.pacing.PacingFunction")
class PacingFunction(keras.optimizers.schedules.LearningRateSchedule):
    """Base class: `pacing(step)` is the enabled fraction p(step) in (0, 1].

    Subclasses implement `fraction(step)` with `keras.ops` on a float tensor
    (any float dtype, so `fractions()` can evaluate it in float64).

    Args:
        total_steps: the number of training steps T; p(T) = 1.
    """

    def __init__(self, total_steps):
        self.total_steps = validate_size("total_steps", total_steps)

    def __call__(self, step):
        return self.fraction(ops.cast(step, "float32"))

    def fraction(self, step):
        raise NotImplementedError

    def fractions(self, num_steps=None):
        """p(0), ..., p(num_steps - 1) in float64 numpy (default: `total_steps + 1`
        values, so the last one is p(total_steps) = 1)."""
        num_steps = self.total_steps + 1 if num_steps is None else num_steps
        steps = np.arange(num_steps, dtype="float64")
        with float64_scope():
            return np.asarray(ops.convert_to_numpy(self.fraction(ops.convert_to_tensor(steps))))

    def get_config(self):
        return {"total_steps": self.total_steps}


@register("keras_efficient.curriculum.pacing.WuPacing")
class WuPacing(PacingFunction):
    """The pacing functions of Wu et al. 2021, as fractions of the data.

    With b = `start_fraction`, a = `full_data_fraction` and s = t / (a·T):

    - `linear`: b + (1 - b)·s
    - `quadratic`: b + (1 - b)·s²
    - `root`: b + (1 - b)·√s
    - `step`: b + ⌊s⌋ (b until a·T, then all the data)
    - `exponential`: b + (1 - b)·(e^{10 s} - 1) / (e^{10} - 1)
    - `logarithmic`: b + (1 - b)·(1 + 0.1·log(s + e^{-10}))

    each clipped at 1. All equal b at t = 0 and 1 from t = a·T on.

    Args:
        total_steps: training steps T.
        kind: one of "linear", "quadratic", "root", "step", "exponential",
            "logarithmic".
        start_fraction: b in (0, 1], the fraction of the (easiest) data used
            at the start.
        full_data_fraction: a in (0, 1], the fraction of training after which
            all the data is used.

    Call arguments:
        step: the training step t (scalar tensor or number).

    Returns:
        p(t), a float32 scalar in (0, 1].

    Example:

    >>> pacing = WuPacing(100, "linear", start_fraction=0.2, full_data_fraction=0.5)
    >>> [round(float(pacing(t)), 3) for t in (0, 25, 50, 100)]
    [0.2, 0.6, 1.0, 1.0]

    Reference:
        Wu, Dyer & Neyshabur, "When Do Curricula Work?", ICLR 2021.
    """

    def __init__(self, total_steps, kind="linear", start_fraction=0.2, full_data_fraction=0.8):
        super().__init__(total_steps)
        self.kind = validate_choice("kind", kind, WU_KINDS)
        self.start_fraction = validate_number(
            "start_fraction", start_fraction, 0, 1, low_inclusive=False)
        self.full_data_fraction = validate_number(
            "full_data_fraction", full_data_fraction, 0, 1, low_inclusive=False)

    def fraction(self, step):
        b = self.start_fraction
        s = step / (self.full_data_fraction * self.total_steps)
        if self.kind == "step":
            # floor_divide keeps float64 (Keras's JAX `floor` returns float32).
            return ops.minimum(1.0, b + ops.floor_divide(s, 1.0))
        # Beyond a·T every ramp is past 1; clipping s first keeps exp() finite.
        s = ops.minimum(s, 1.0)
        if self.kind == "linear":
            ramp = s
        elif self.kind == "quadratic":
            ramp = ops.square(s)
        elif self.kind == "root":
            ramp = ops.sqrt(s)
        elif self.kind == "exponential":
            ramp = ops.expm1(10.0 * s) / math.expm1(10.0)
        else:  # logarithmic
            ramp = 1.0 + 0.1 * ops.log(s + math.exp(-10.0))
        return ops.minimum(1.0, b + (1.0 - b) * ramp)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind,
                "start_fraction": self.start_fraction,
                "full_data_fraction": self.full_data_fraction}


@register("keras_efficient.curriculum.pacing.ExponentialPacing")
class ExponentialPacing(PacingFunction):
    """Hacohen & Weinshall's exponential pacing: min(1, s·inc^k(t)).

    k(t) counts the completed steps of the pacing staircase: with one step
    length L (fixed exponential pacing) k(t) = ⌊t / L⌋; with a list of lengths
    (varied exponential pacing) the i-th increase happens after the first i
    lengths, and the last length repeats.

    Args:
        total_steps: training steps T; the staircase must reach 1 by T.
        start_fraction: s in (0, 1], the fraction used at the start.
        increase: inc > 1, the factor applied at each staircase step.
        step_length: L, an integer >= 1, or a list of them (varied pacing).

    Call arguments:
        step: the training step t.

    Returns:
        p(t), a float32 scalar in (0, 1].

    Example:

    >>> pacing = ExponentialPacing(100, start_fraction=0.25, increase=2.0, step_length=10)
    >>> [float(pacing(t)) for t in (0, 10, 20, 100)]
    [0.25, 0.5, 1.0, 1.0]

    Reference:
        Hacohen & Weinshall, "On the Power of Curriculum Learning in Training
        Deep Networks", ICML 2019.
    """

    def __init__(self, total_steps, start_fraction=0.04, increase=1.9, step_length=100):
        super().__init__(total_steps)
        self.start_fraction = validate_number(
            "start_fraction", start_fraction, 0, 1, low_inclusive=False)
        self.increase = validate_number("increase", increase, 1, low_inclusive=False)
        lengths = list(step_length) if isinstance(step_length, (list, tuple)) else [step_length]
        if not lengths:
            raise ValueError("Invalid value received for argument `step_length`. Expected an "
                             "integer >= 1 or a non-empty list of them. Received: step_length=[]")
        for length in lengths:
            validate_size("step_length", length)
        self.step_length = step_length if isinstance(step_length, int) else lengths
        self._boundaries = [float(b) for b in np.cumsum(lengths)]
        self._last_length = float(lengths[-1])
        # p(T) alone: `fractions()` would allocate one value per step.
        final = float(ops.convert_to_numpy(
            self.fraction(ops.convert_to_tensor(float(self.total_steps), "float64"))))
        if final < 1.0:
            raise ValueError(
                f"Invalid value received for argument `step_length`. The pacing must "
                f"enable all the data by `total_steps`={total_steps}, but "
                f"p(total_steps)={final:.4g}: use shorter steps, a larger `increase` or "
                f"a larger `start_fraction`. Received: step_length={step_length!r}")

    def fraction(self, step):
        boundaries = ops.cast(self._boundaries, step.dtype)
        listed = ops.sum(ops.cast(ops.expand_dims(step, -1) >= boundaries, step.dtype), axis=-1)
        repeated = ops.maximum(
            0.0, ops.floor((step - self._boundaries[-1]) / self._last_length))
        # inc^k as exp(k·log inc): one op that keeps the float dtype of `step`.
        growth = ops.exp((listed + repeated) * math.log(self.increase))
        return ops.minimum(1.0, self.start_fraction * growth)

    def get_config(self):
        return {**super().get_config(), "start_fraction": self.start_fraction,
                "increase": self.increase, "step_length": self.step_length}


@export("keras_efficient.curriculum.pacing.linear")
def linear(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s linear pacing: b + (1 - b)·t/(aT), clipped at 1."""
    return WuPacing(total_steps, "linear", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.quadratic")
def quadratic(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s quadratic pacing: b + (1 - b)·(t/(aT))², clipped at 1."""
    return WuPacing(total_steps, "quadratic", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.root")
def root(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s root pacing: b + (1 - b)·√(t/(aT)), clipped at 1."""
    return WuPacing(total_steps, "root", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.step")
def step(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s step pacing (the book's "fixed fraction, then all the data"):
    b until step a·T, then 1."""
    return WuPacing(total_steps, "step", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.exponential")
def exponential(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s exponential pacing: b + (1 - b)(e^{10t/(aT)} - 1)/(e^{10} - 1)."""
    return WuPacing(total_steps, "exponential", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.logarithmic")
def logarithmic(total_steps, start_fraction=0.2, full_data_fraction=0.8):
    """Wu et al.'s logarithmic pacing: b + (1 - b)(1 + 0.1·log(t/(aT) + e^{-10}))."""
    return WuPacing(total_steps, "logarithmic", start_fraction, full_data_fraction)


@export("keras_efficient.curriculum.pacing.fixed_exponential")
def fixed_exponential(total_steps, start_fraction=0.04, increase=1.9, step_length=100):
    """Hacohen & Weinshall's fixed exponential pacing: min(1, s·inc^⌊t/L⌋)."""
    return ExponentialPacing(total_steps, start_fraction, increase, step_length)


@export("keras_efficient.curriculum.pacing.varied_exponential")
def varied_exponential(total_steps, step_lengths, start_fraction=0.04, increase=1.9):
    """Hacohen & Weinshall's varied exponential pacing: the i-th increase after the
    first i of `step_lengths` (the last length repeats)."""
    if not isinstance(step_lengths, (list, tuple)) or not step_lengths:
        raise TypeError("Invalid type received for argument `step_lengths`. Expected a "
                        f"non-empty list of integers. Received: step_lengths={step_lengths!r}")
    for length in step_lengths:
        validate_size("step_lengths", length)
    return ExponentialPacing(total_steps, start_fraction, increase, list(step_lengths))
