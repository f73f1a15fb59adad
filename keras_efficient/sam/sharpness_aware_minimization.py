"""Sharpness-Aware Minimization (SAM) with ASAM, m-sharpness and interval SAM.

References:
- Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
  Generalization", ICLR 2021 (SAM, m-sharpness). arXiv:2010.01412
- Kwon et al., "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
  Learning of Deep Neural Networks", ICML 2021. arXiv:2102.11600
- Liu et al., "Towards Efficient and Scalable Sharpness-Aware Minimization",
  CVPR 2022 (LookSAM: SAM every k steps, reusing the sharpness direction between).
"""

import keras
import tensorflow as tf
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register
class SharpnessAwareMinimization(keras.Model):
    """Trains the wrapped model to minimize the worst loss in a ρ-ball around it.

    Each SAM step takes two training-mode passes over the batch. The first, at
    the weights `w`, gives the gradient `g`; the weights are perturbed towards
    the steepest ascent, `ε = ρ · g / ‖g‖₂` (one norm over all trainable
    variables), and the gradient of the second pass at `w + ε` is what the
    optimizer applies at `w`. With `adaptive=True` this is ASAM:
    `ε = ρ · T_w² g / ‖T_w g‖₂` with `T_w = |w| + η` element-wise, which makes
    the ball scale-invariant (typical ρ is then about 10x larger, 0.5–2).

    What the peers get wrong and this wrapper does:
    - both passes run in training mode, and the perturbed pass is stateless
      (`keras.StatelessScope`): BatchNorm moving statistics, random-seed states
      and other non-trainable state advance once per step, from the first
      pass. The perturbed pass starts from the same non-trainable state as the
      first, so dropout draws the same mask in both passes.
    - the weights are never written with `w + ε`: the second pass reads the
      perturbed values through the scope, so nothing has to be restored and a
      non-finite gradient cannot corrupt the weights.
    - the compiled loss, `sample_weight`, regularization and `add_loss`
      losses are part of both passes; dict and multi-input `x` work.
    - under `tf.distribute` the perturbation uses the all-reduced gradient of
      the global batch, so two replicas give the one-device result.
    - `num_batch_splits=m` (m-sharpness) splits the *global* batch into `m`
      equal sub-batches, perturbs each with its own gradient and averages the
      `m` gradients. It must be a multiple of the number of replicas; each
      replica handles `m / replicas` splits. `num_batch_splits=replicas` is
      per-replica perturbation (what the SAM paper did on TPUs). The first
      passes run per sub-batch, so BatchNorm statistics are updated once per
      sub-batch, as on `m` devices.
    - the loss is scaled with the optimizer's `scale_loss` in both passes, so
      `mixed_float16` (`LossScaleOptimizer`) works: `ε` is invariant to the
      scale, and a non-finite gradient makes the optimizer skip the step.
    - `interval=k` takes a SAM step every `k`-th optimizer step and a plain
      step otherwise; a `tf.cond` skips the perturbed pass, so a plain step
      costs one pass (as in Composer's SAM).

    Args:
        model: the `keras.Model` to train.
        rho: radius of the neighbourhood, > 0. Default 0.05 (the paper's
            CIFAR value).
        num_batch_splits: `None` (one perturbation for the whole global batch)
            or the number `m` of sub-batches perturbed separately
            (m-sharpness); must divide the global batch and be a multiple of
            the number of replicas.
        adaptive: `True` for ASAM's element-wise adaptive perturbation.
        interval: take the SAM step every `interval`-th step, >= 1.
        eta: ASAM's η in `T_w = |w| + η`, >= 0, keeping the ball open around
            zero weights (the paper's 0.01). Unused unless `adaptive`.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the wrapped model's inputs.
        training: passed to the wrapped model.

    Returns:
        The wrapped model's outputs. Use `.model` for inference and export.

    Example:

    >>> import keras, numpy as np
    >>> import keras_efficient as ke
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> sam = ke.models.SharpnessAwareMinimization(inner, rho=0.05)
    >>> sam.compile(optimizer="sgd", loss="mse")
    >>> history = sam.fit(np.ones((8, 4)), np.zeros((8, 3)), verbose=0)
    >>> sam.model is inner
    True
    """

    def __init__(self, model, rho=0.05, num_batch_splits=None, adaptive=False, interval=1,
                 eta=0.01, **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid type received for argument `model`. Expected a `keras.Model`. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        validate_number("rho", rho, 0, low_inclusive=False)
        if num_batch_splits is not None:
            validate_number("num_batch_splits", num_batch_splits, 1, integer=True)
        if not isinstance(adaptive, bool):
            raise TypeError(
                "Invalid type received for argument `adaptive`. Expected a bool. "
                f"Received: adaptive={adaptive!r} of type {type(adaptive).__name__}"
            )
        validate_number("interval", interval, 1, integer=True)
        validate_number("eta", eta, 0)
        super().__init__(**kwargs)
        self.model = model
        self.rho = rho
        self.num_batch_splits = num_batch_splits
        self.adaptive = adaptive
        self.interval = interval
        self.eta = eta
        if model.built:
            self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self.model.built:
            # Without a strategy Keras defers building to the first trace; the
            # passes below need the variables (and the state snapshot) first.
            self._symbolic_build(data_batch=data)
        batches = self._split(x, y, sample_weight)
        variables = self.trainable_variables
        losses, predictions, gradients, states = [], [], [], []
        for batch in batches:
            # The state each perturbed pass starts from: the one its first pass saw.
            states.append([tf.identity(v.value) for v in self.non_trainable_variables])
            loss, y_pred, grads = self._first_pass(variables, *batch)
            losses.append(loss)
            predictions.append(y_pred)
            gradients.append(grads)
        # Variables the loss does not reach get no gradient and no update, as in fit.
        used = [i for i, g in enumerate(gradients[0]) if g is not None]
        used_variables = [variables[i] for i in used]
        gradients = [[_dense(grads[i]) for i in used] for grads in gradients]

        ascent_directions = gradients
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if self.num_batch_splits is None and replicas > 1:
            # One perturbation for the global batch: the sum of the replicas'
            # gradients (their losses are already scaled by 1/replicas). Outside
            # the tf.cond, where a cross-replica sync point is not allowed.
            ascent_directions = [tf.distribute.get_replica_context().all_reduce(
                "sum", gradients[0])]

        def plain():
            return _mean(gradients)

        def sharpness_aware():
            return _mean([
                self._perturbed_pass(used_variables, direction, state, *batch)
                for batch, direction, state in zip(batches, ascent_directions, states)
            ])

        if self.interval == 1:
            final = sharpness_aware()
        else:
            take_sam_step = ops.equal(self.optimizer.iterations % self.interval, 0)
            final = tf.cond(take_sam_step, sharpness_aware, plain)
        self.optimizer.apply_gradients(zip(final, used_variables))

        loss = ops.mean(ops.stack(losses))
        # Report the global-batch loss, as Keras's own train_step does.
        self._loss_tracker.update_state(
            loss * replicas, sample_weight=tf.shape(_first_tensor(x))[0])
        y_pred = predictions[0] if len(predictions) == 1 else keras.tree.map_structure(
            lambda *parts: ops.concatenate(parts, axis=0), *predictions)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _forward(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=True)
        return loss, y_pred

    def _first_pass(self, variables, x, y, sample_weight):
        """The ordinary training pass at `w`: updates BatchNorm statistics."""
        with tf.GradientTape() as tape:
            loss, y_pred = self._forward(x, y, sample_weight)
            scaled_loss = self.optimizer.scale_loss(loss)
        return loss, y_pred, tape.gradient(scaled_loss, variables)

    def _perturbed_pass(self, variables, gradients, state, x, y, sample_weight):
        """Gradient at `w + ε`, without touching any variable."""
        epsilons = self._perturbation(variables, gradients)
        perturbed = [v.value + epsilon for v, epsilon in zip(variables, epsilons)]
        mapping = list(zip(variables, perturbed)) + list(zip(self.non_trainable_variables, state))
        with tf.GradientTape() as tape:
            tape.watch(perturbed)
            # Reads see w + ε and the first pass's starting state; every write
            # (BatchNorm statistics, seed states, loss metrics) is discarded.
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                loss, _ = self._forward(x, y, sample_weight)
            scaled_loss = self.optimizer.scale_loss(loss)
        return [_dense(g) for g in tape.gradient(scaled_loss, perturbed)]

    def _perturbation(self, variables, gradients):
        """`ρ g / ‖g‖` (SAM) or `ρ T² g / ‖T g‖` with `T = |w| + η` (ASAM)."""
        if self.adaptive:
            scales = [ops.abs(v.value) + self.eta for v in variables]
            scaled = [scale * g for scale, g in zip(scales, gradients)]
        else:
            scaled = gradients
        # ε is invariant to the scale of g, so the loss scale of mixed precision
        # cancels. Dividing by the largest entry first keeps the squared norm
        # from overflowing float32 under a large loss scale (which would make
        # ε = 0 and silently turn the step into a plain one).
        largest = ops.max(ops.stack([ops.max(ops.abs(g)) for g in scaled]))
        scaled = [g / (largest + 1e-30) for g in scaled]
        norm = ops.sqrt(ops.sum(ops.stack([ops.sum(ops.square(g)) for g in scaled])))
        factor = self.rho / (norm + 1e-12)
        if self.adaptive:
            return [scale * g * factor for scale, g in zip(scales, scaled)]
        return [g * factor for g in scaled]

    def _split(self, x, y, sample_weight):
        """The (x, y, sample_weight) sub-batches this replica perturbs separately."""
        if self.num_batch_splits is None:
            return [(x, y, sample_weight)]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if self.num_batch_splits % replicas:
            raise ValueError(
                "Invalid value received for argument `num_batch_splits`. Expected a "
                f"multiple of the number of replicas ({replicas}): the splits divide the "
                f"global batch. Received: num_batch_splits={self.num_batch_splits}"
            )
        splits = self.num_batch_splits // replicas
        if splits == 1:
            return [(x, y, sample_weight)]
        batch_size = _first_tensor(x).shape[0]
        if batch_size is not None and batch_size % splits:
            raise ValueError(
                "Invalid value received for argument `num_batch_splits`. Expected a "
                f"divisor of the batch size ({batch_size * replicas} over {replicas} "
                f"replica(s)). Received: num_batch_splits={self.num_batch_splits}"
            )
        batch_size = tf.shape(_first_tensor(x))[0]
        tf.debugging.assert_equal(
            batch_size % splits, 0,
            message=f"Invalid value received for argument `num_batch_splits`: "
                    f"{self.num_batch_splits} does not divide the batch size.")
        size = batch_size // splits
        return [
            keras.tree.map_structure(
                lambda t, j=j: None if t is None else t[j * size:(j + 1) * size],
                (x, y, sample_weight))
            for j in range(splits)
        ]

    def get_config(self):
        config = super().get_config()
        config.update({
            "model": keras.saving.serialize_keras_object(self.model),
            "rho": self.rho,
            "num_batch_splits": self.num_batch_splits,
            "adaptive": self.adaptive,
            "interval": self.interval,
            "eta": self.eta,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


def _first_tensor(x):
    return next(t for t in keras.tree.flatten(x) if t is not None)


def _dense(gradient):
    # Embedding gradients arrive as IndexedSlices; ε and tf.cond need dense tensors.
    return tf.convert_to_tensor(gradient)


def _mean(gradient_lists):
    if len(gradient_lists) == 1:
        return gradient_lists[0]
    return [ops.mean(ops.stack(parts), axis=0) for parts in zip(*gradient_lists)]
