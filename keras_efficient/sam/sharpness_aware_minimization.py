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
from keras import ops

from keras_efficient import backend
from keras_efficient.backend import keras_compat
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


@register("keras_efficient.models.SharpnessAwareMinimization")
class SharpnessAwareMinimization(backend.StatefulSteps, keras.Model):
    """Trains the wrapped model to minimize the worst loss in a ρ-ball around it.

    Each SAM step takes two training-mode passes over the batch. The first, at
    the weights `w`, gives the gradient `g`; the weights are perturbed towards
    the steepest ascent, `ε = ρ · g / ‖g‖₂` (one norm over all trainable
    variables), and the gradient of the second pass at `w + ε` is what the
    optimizer applies at `w`. With `adaptive=True` this is ASAM:
    `ε = ρ · T_w² g / ‖T_w g‖₂` with `T_w = |w| + η` element-wise, which makes
    the ball scale-invariant (ASAM's ρ is larger than SAM's, 0.5–2 in its paper).

    Details (the method card compares them with other implementations):
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
      the global batch, so two replicas give the one-device result. On JAX
      under `keras.distribution.DataParallel` the step is one program over the
      global batch, so the gradient is global there too.
    - `num_batch_splits=m` (m-sharpness) splits the *global* batch into `m`
      equal sub-batches, perturbs each with its own gradient and averages the
      `m` gradients. On TensorFlow it must be a multiple of the number of
      replicas; each replica handles `m / replicas` splits. `num_batch_splits=replicas` is
      per-replica perturbation (what the SAM paper did on TPUs). The first
      passes run per sub-batch, so BatchNorm statistics are updated once per
      sub-batch, as on `m` devices. Differs from tf_keras's SAM on purpose:
      tf_keras *sums* the `m` gradients, so its gradient is `m` times ours;
      to reproduce a tf_keras run with SGD (with or without momentum), use
      `m` times its learning rate (and `1/m` times any decoupled
      `weight_decay`); Adam and RMSprop are invariant to the gradient's scale
      (up to `epsilon`).
    - the loss is scaled with the optimizer's `scale_loss` in both passes, so
      `mixed_float16` (`LossScaleOptimizer`) works: `ε` is invariant to the
      scale, and a non-finite gradient makes the optimizer skip the step.
    - `interval=k` takes a SAM step every `k`-th optimizer step and a plain
      step otherwise; a conditional skips the perturbed pass, so a plain step
      costs one pass (as in Composer's SAM).
    - `looksam_alpha=α` with `interval=k` is LookSAM (Liu et al. 2022): each
      SAM step stores the direction `v` of the part of the SAM gradient `g_s`
      orthogonal to the plain gradient `g`, and the steps in between use
      `g + α ‖g‖ v` instead of `g`, at the cost of one pass. It keeps one
      gradient-sized buffer per variable (saved with the model).

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
        looksam_alpha: `None` (plain steps between SAM steps) or LookSAM's
            `α > 0`, the weight of the stored sharpness direction on the steps
            between (the paper uses 0.7 with `interval=5`). Needs
            `interval > 1`; not combined with `num_batch_splits`.
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
                 eta=0.01, looksam_alpha=None, **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid type received for argument `model`. Expected a `keras.Model`. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        validate_number("rho", rho, 0, low_inclusive=False)
        if num_batch_splits is not None:
            validate_size("num_batch_splits", num_batch_splits)
        if not isinstance(adaptive, bool):
            raise TypeError(
                "Invalid type received for argument `adaptive`. Expected a bool. "
                f"Received: adaptive={adaptive!r} of type {type(adaptive).__name__}"
            )
        validate_size("interval", interval)
        validate_number("eta", eta, 0)
        if looksam_alpha is not None:
            validate_number("looksam_alpha", looksam_alpha, 0, low_inclusive=False)
            if interval == 1 or num_batch_splits is not None:
                raise ValueError(
                    "Invalid value received for argument `looksam_alpha`. LookSAM reuses "
                    "the sharpness direction on the steps between SAM steps, so it needs "
                    "`interval` > 1 and `num_batch_splits=None`. Received: "
                    f"looksam_alpha={looksam_alpha}, interval={interval}, "
                    f"num_batch_splits={num_batch_splits}"
                )
        super().__init__(**kwargs)
        self.model = model
        self.rho = rho
        self.num_batch_splits = num_batch_splits
        self.adaptive = adaptive
        self.interval = interval
        self.eta = eta
        self.looksam_alpha = looksam_alpha
        self._sharpness_directions = None
        if model.built:
            self.built = True
            self._build_sharpness_directions()

    def _build_sharpness_directions(self):
        """LookSAM's stored direction, one buffer per trainable variable.

        Every replica computes the same direction from all-reduced gradients,
        so each keeps its own copy (`on_read`): writing it needs no
        cross-replica sync.
        """
        if self.looksam_alpha is None or self._sharpness_directions is not None:
            return
        # An inner model built only by `fit` leaves this wrapper built (and its
        # state locked) before the inner variables exist; unlock as Keras's own
        # `quantize` does, so the buffers are tracked and saved.
        with keras_compat.unlocked_tracker(self):
            self._sharpness_directions = [
                keras.Variable(ops.zeros(v.shape, v.dtype), trainable=False,
                               synchronization="on_read", aggregation="mean",
                               name=f"sharpness_direction_{index}")
                for index, v in enumerate(self.model.trainable_variables)
            ]

    def _symbolic_build(self, *args, **kwargs):
        super()._symbolic_build(*args, **kwargs)
        self._build_sharpness_directions()

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None,
               **kwargs):
        """Exports the wrapped model, which is what calling this wrapper computes.

        The wrapper is built with its inner model, so it has no input shapes of
        its own for `keras.Model.export` to infer a signature from; the inner
        model's signature also keeps its input names and dtypes.
        """
        return self.model.export(filepath, format=format, verbose=verbose,
                                 input_signature=input_signature, **kwargs)

    def stateful_train_step(self, data):
        # One algorithm on both backends; `backend` holds the only differences
        # (how gradients are taken, how many replicas share the step).
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self.model.built:
            # Without a strategy Keras defers building to the first trace; the
            # passes below need the variables (and the state snapshot) first.
            keras_compat.symbolic_build(self, data)
        batches = self._split(x, y, sample_weight)
        variables = self.trainable_variables
        losses, predictions, gradients, states = [], [], [], []
        for batch in batches:
            # The state each perturbed pass starts from: the one its first pass saw.
            states.append([ops.copy(v.value) for v in self.non_trainable_variables])
            loss, y_pred, grads = self._first_pass(variables, *batch)
            losses.append(loss)
            predictions.append(y_pred)
            gradients.append(grads)
        # Variables the loss does not reach get no gradient and no update, as in fit.
        used = [i for i, g in enumerate(gradients[0]) if g is not None]
        used_variables = [variables[i] for i in used]
        gradients = [[backend.dense_gradient(grads[i]) for i in used] for grads in gradients]

        ascent_directions = gradients
        replicas = backend.replicas_in_sync()
        if self.num_batch_splits is None and replicas > 1:
            # One perturbation for the global batch: the sum of the replicas'
            # gradients (their losses are already scaled by 1/replicas). Outside
            # the conditional, where a cross-replica sync point is not allowed.
            ascent_directions = [backend.all_reduce_sum(gradients[0])]

        def plain():
            if self.looksam_alpha is None:
                return _mean(gradients)
            return self._looksam_gradient(gradients[0], ascent_directions[0], used, replicas)

        def sharpness_aware():
            return _mean([
                self._perturbed_pass(used_variables, direction, state, *batch)
                for batch, direction, state in zip(batches, ascent_directions, states)
            ])

        if self.interval == 1:
            final = sharpness_aware()
        else:
            take_sam_step = ops.equal(self.optimizer.iterations % self.interval, 0)
            final = ops.cond(take_sam_step, sharpness_aware, plain)
            if self.looksam_alpha is not None:
                self._store_sharpness_direction(take_sam_step, final, ascent_directions[0],
                                                used, replicas)
        backend.apply_gradients(self.optimizer, final, used_variables)

        loss = ops.mean(ops.stack(losses))
        # Report the global-batch loss, as Keras's own train_step does.
        keras_compat.loss_tracker(self).update_state(
            loss * replicas, sample_weight=ops.shape(_first_tensor(x))[0])
        y_pred = predictions[0] if len(predictions) == 1 else keras.tree.map_structure(
            lambda *parts: ops.concatenate(parts, axis=0), *predictions)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _forward(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = keras_compat.compute_loss(self, x=x, y=y, y_pred=y_pred,
                                         sample_weight=sample_weight, training=True)
        return loss, y_pred

    def _scaled_forward(self, x, y, sample_weight):
        loss, y_pred = self._forward(x, y, sample_weight)
        return self.optimizer.scale_loss(loss), (loss, y_pred)

    def _first_pass(self, variables, x, y, sample_weight):
        """The ordinary training pass at `w`: updates BatchNorm statistics."""
        _, (loss, y_pred), gradients = backend.value_and_gradients(
            lambda: self._scaled_forward(x, y, sample_weight), variables)
        return loss, y_pred, gradients

    def _perturbed_pass(self, variables, gradients, state, x, y, sample_weight):
        """Gradient at `w + ε`, without touching any variable."""
        epsilons = self._perturbation(variables, gradients)
        perturbed = [v.value + epsilon for v, epsilon in zip(variables, epsilons)]
        # Reads see w + ε and the first pass's starting state; every write
        # (BatchNorm statistics, seed states, loss metrics) is discarded.
        _, _, perturbed_gradients = backend.stateless_value_and_gradients(
            lambda: self._scaled_forward(x, y, sample_weight), variables, perturbed,
            list(zip(self.non_trainable_variables, state)))
        return [backend.dense_gradient(g) for g in perturbed_gradients]

    def _perturbation(self, variables, gradients):
        """`ρ g / ‖g‖` (SAM) or `ρ T² g / ‖T g‖` with `T = |w| + η` (ASAM)."""
        if not self.adaptive:
            return [self.rho * g for g in _normalized(gradients)[0]]
        scales = [ops.abs(v.value) + self.eta for v in variables]
        directions, _ = _normalized([scale * g for scale, g in zip(scales, gradients)])
        return [self.rho * scale * d for scale, d in zip(scales, directions)]

    def _looksam_gradient(self, local_gradients, global_gradients, used, replicas):
        """This replica's share of LookSAM's `g + α ‖g‖ v`, `g` the global gradient."""
        _, norm = _normalized(global_gradients)
        factor = self.looksam_alpha * norm / replicas  # the optimizer sums the replicas
        return [g + factor * self._sharpness_directions[i].value
                for g, i in zip(local_gradients, used)]

    def _store_sharpness_direction(self, take_sam_step, final, global_gradients, used,
                                   replicas):
        """After a SAM step, keep the unit direction of `g_s − (g_s·u) u`, `u = g/‖g‖`."""
        if replicas > 1:
            # Outside the conditional: the global SAM gradient (plain steps discard it).
            final = backend.all_reduce_sum(final)
        stored = [self._sharpness_directions[i] for i in used]

        def new_directions():
            unit_gradient, _ = _normalized(global_gradients)
            along = ops.sum(ops.stack([ops.sum(s * u) for s, u in zip(final, unit_gradient)]))
            directions, _ = _normalized([s - along * u for s, u in zip(final, unit_gradient)])
            finite = ops.all(ops.stack([ops.all(ops.isfinite(d)) for d in directions]))
            # A non-finite SAM gradient (a loss-scale overflow) keeps the old direction.
            return [ops.where(finite, d, v.value) for v, d in zip(stored, directions)]

        # Plain steps compute nothing here. The conditional returns the values
        # and the writes follow it: JAX's conditionals cannot write variables.
        directions = ops.cond(take_sam_step, new_directions,
                              lambda: [v.value for v in stored])
        for variable, direction in zip(stored, directions):
            variable.assign(direction)

    def _split(self, x, y, sample_weight):
        """The (x, y, sample_weight) sub-batches this replica perturbs separately."""
        if self.num_batch_splits is None:
            return [(x, y, sample_weight)]
        replicas = backend.replicas_in_sync()
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
        if batch_size is None:
            # Only TensorFlow traces an unknown batch size (JAX's are static).
            import tensorflow as tf

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
            "looksam_alpha": self.looksam_alpha,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "model")


def _first_tensor(x):
    return next(t for t in keras.tree.flatten(x) if t is not None)


def _normalized(tensors):
    """`tensors / ‖tensors‖₂` (one norm over all entries), and the norm.

    Divides by the largest entry first: the squared norm of loss-scaled
    gradients can overflow float32, which would turn the direction into 0
    (and a SAM step silently into a plain one).
    """
    largest = ops.max(ops.stack([ops.max(ops.abs(t)) for t in tensors])) + 1e-30
    scaled = [t / largest for t in tensors]
    scaled_norm = ops.sqrt(ops.sum(ops.stack([ops.sum(ops.square(t)) for t in scaled])))
    return [t / (scaled_norm + 1e-12) for t in scaled], largest * scaled_norm


def _mean(gradient_lists):
    if len(gradient_lists) == 1:
        return gradient_lists[0]
    return [ops.mean(ops.stack(parts), axis=0) for parts in zip(*gradient_lists)]
