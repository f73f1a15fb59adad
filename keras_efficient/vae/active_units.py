"""Active latent units: how many dimensions of a VAE's posterior mean carry information."""

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register
class ActiveUnits(keras.metrics.Metric):
    """The number of latent dimensions whose posterior mean varies over the data.

    A unit `u` is active when `Cov_x(E_q(u|x)[u]) > threshold`: its posterior
    mean changes with the input. A collapsed unit has `q(u|x) = p(u)` for
    every `x`, so its mean is constant and it carries no information about
    `x`. The variance is over all the examples seen since the last reset (an
    epoch in `fit`), accumulated as sums, so it is exact over batches and
    replicas.

    Args:
        latent_dim: number of latent dimensions, >= 1.
        threshold: variance above which a unit counts as active. Defaults to
            0.01, Burda et al.'s value.
        name: metric name. Defaults to `"active_units"`.
        dtype: dtype of the accumulators. Defaults to `"float32"`.

    Call arguments:
        z_mean: posterior means `(batch_size, latent_dim)`.

    Example:

    >>> import numpy as np
    >>> metric = ActiveUnits(latent_dim=2)
    >>> metric.update_state(np.array([[0.0, 1.0], [0.0, -1.0]]))
    >>> int(metric.result())
    1

    Reference:
        Burda, Grosse, Salakhutdinov, "Importance Weighted Autoencoders", ICLR
        2016, section 5.2 (https://arxiv.org/abs/1509.00519).
    """

    def __init__(self, latent_dim, threshold=0.01, name="active_units", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.latent_dim = validate_number("latent_dim", latent_dim, 1, integer=True)
        self.threshold = validate_number("threshold", threshold, 0)
        self.total = self.add_variable((latent_dim,), "zeros", name="total", aggregation="sum")
        self.total_squares = self.add_variable(
            (latent_dim,), "zeros", name="total_squares", aggregation="sum")
        self.count = self.add_variable((), "zeros", name="count", aggregation="sum")

    def update_state(self, z_mean, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("`ActiveUnits` counts every example once; expected "
                             "sample_weight=None. Received: a sample_weight")
        z_mean = ops.cast(z_mean, self.dtype)
        self.total.assign_add(ops.sum(z_mean, axis=0))
        self.total_squares.assign_add(ops.sum(ops.square(z_mean), axis=0))
        self.count.assign_add(ops.cast(ops.shape(z_mean)[0], self.dtype))

    def result(self):
        count = ops.maximum(self.count, 1.0)
        mean = self.total / count
        variance = self.total_squares / count - ops.square(mean)
        return ops.sum(ops.cast(variance > self.threshold, self.dtype))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "threshold": self.threshold}
