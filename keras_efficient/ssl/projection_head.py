"""The MLP heads of SimCLR, BYOL and SimSiam (projector and predictor)."""

import keras

from keras_efficient.utils import MAX_SIZE
from keras_efficient.utils import register
from keras_efficient.utils import validate_size


@register("keras_efficient.layers.ProjectionHead")
class ProjectionHead(keras.layers.Layer):
    """An MLP head: `[Dense -> BatchNorm -> ReLU] * len(hidden_dims) -> Dense`.

    The projection `g` that maps the encoder's representation `h` to the space
    where the self-supervised loss is computed (SimCLR: one hidden layer, then
    128 outputs), and the predictor `q` of BYOL and SimSiam (a second head on top
    of the projection). The representation *before* this head is what transfers
    to downstream tasks.

    Args:
        hidden_dims: sizes of the hidden layers (may be empty for a linear head).
        output_dim: size of the output.
        batch_norm: BatchNorm after every hidden Dense (the hidden Dense then has
            no bias). SimCLR, BYOL and SimSiam all use it.
        output_batch_norm: BatchNorm on the output too (SimSiam's projector).
        synchronized: BatchNorm statistics over the global batch of all
            replicas (SimCLR's "global BN", which keeps the per-device batch
            statistics from leaking which samples are positives); the same as
            plain BatchNorm on one device. On JAX every BatchNorm is global
            already: under `keras.distribution.DataParallel` a step is one
            program over the global batch, whose mean and variance XLA reduces
            across devices (Keras's `synchronized=True` is TensorFlow-only).

    Call arguments:
        inputs: `(batch_size, input_dim)` representations.
        training: BatchNorm uses batch statistics when True.

    Returns:
        `(batch_size, output_dim)`.

    Example:

    >>> import numpy as np
    >>> head = ProjectionHead(hidden_dims=(32,), output_dim=8)
    >>> tuple(head(np.ones((4, 16), "float32")).shape)
    (4, 8)

    Reference:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020, section 2.1 and Fig. 8.
    """

    def __init__(self, hidden_dims=(256,), output_dim=128, batch_norm=True,
                 output_batch_norm=False, synchronized=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hidden_dims, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_SIZE for d in hidden_dims
        ):
            raise ValueError(
                "Invalid value received for argument `hidden_dims`. Expected a sequence of "
                f"integers in [1, {MAX_SIZE}]. Received: hidden_dims={hidden_dims!r}"
            )
        self.hidden_dims = tuple(hidden_dims)
        self.output_dim = validate_size("output_dim", output_dim)
        self.batch_norm = bool(batch_norm)
        self.output_batch_norm = bool(output_batch_norm)
        self.synchronized = bool(synchronized)
        self.blocks = []
        for units in self.hidden_dims:
            block = [keras.layers.Dense(units, use_bias=not self.batch_norm,
                                        dtype=self.dtype_policy)]
            if self.batch_norm:
                block.append(self._batch_norm())
            block.append(keras.layers.ReLU(dtype=self.dtype_policy))
            self.blocks.append(block)
        self.output_dense = keras.layers.Dense(
            output_dim, use_bias=not self.output_batch_norm, dtype=self.dtype_policy)
        self.output_norm = self._batch_norm() if self.output_batch_norm else None

    def _batch_norm(self):
        # Synchronizing is a `tf.distribute` all-reduce; JAX's batch is global.
        synchronized = self.synchronized and keras.backend.backend() == "tensorflow"
        return keras.layers.BatchNormalization(synchronized=synchronized,
                                               dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.output_dense.build(shape)
        if self.output_norm is not None:
            self.output_norm.build(self.output_dense.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training)
        x = self.output_dense(x)
        if self.output_norm is not None:
            x = self.output_norm(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dims=list(self.hidden_dims),
            output_dim=self.output_dim,
            batch_norm=self.batch_norm,
            output_batch_norm=self.output_batch_norm,
            synchronized=self.synchronized,
        )
        return config
