"""Model-Agnostic Meta-Learning (MAML), first-order MAML and Meta-SGD."""

import keras
from keras import ops

from keras_efficient.backend import keras_compat
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

_BACKENDS = ("tensorflow", "jax")


def _gradients(loss_fn, weights):
    """Gradients of `loss_fn(weights) -> (loss, aux)` with respect to the list `weights`.

    The gradients stay differentiable (a gradient tape or `jax.grad` around this call
    differentiates them again): this is where second-order MAML gets its Hessian
    terms. The only backend-specific code of the meta-learners.

    Returns:
        `(gradients, aux)`.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(loss_fn, has_aux=True)(weights)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss, aux = loss_fn(weights)
    return tape.gradient(loss, weights, unconnected_gradients="zero"), aux


@register("keras_efficient.models.MAML")
class MAML(keras.Model):
    """Model-Agnostic Meta-Learning: learn an initialization that adapts in a few steps.

    For every task of a meta-batch, `inner_steps` steps of gradient descent on the
    task's support set (with the compiled loss) turn the wrapped model's weights
    `theta` into task weights `phi`; the model with `phi` predicts the query set.
    `fit` then minimizes the compiled loss on the queries (averaged over the tasks)
    with respect to `theta`, through the inner steps: the meta-gradient
    contains the Hessian-vector products of the support losses (second order).
    The inner loop never writes weights: it differentiates
    `model.stateless_call(weights, non_trainable, x)` with nested gradients (a
    `tf.GradientTape` inside Keras's tape on TensorFlow, `jax.grad` inside Keras's
    `jax.value_and_grad` on JAX), so a whole meta-batch is one compiled step.

    `first_order=True` drops the second-order terms (FOMAML: the query gradient at
    `phi` is used as the meta-gradient). `learn_inner_learning_rates=True` is
    Meta-SGD: one learnable inner learning rate per weight entry, initialized to
    `inner_learning_rate` and meta-learned with the weights.

    Feed `fit`, `evaluate` and `predict` episodes `((support_x, support_y,
    query_x), query_y)` with a leading meta-batch axis of static size (see
    `keras_efficient.data.episode_dataset` and `sinusoid_episodes`); `predict`
    returns the adapted model's query predictions `[meta_batch, queries, ...]`.
    Non-trainable state (e.g. a dropout seed) is threaded through the tasks in
    order.

    BatchNormalization: on TensorFlow, second-order meta-gradients through
    Keras's BatchNormalization are wrong by 1-10 % (`tf.nn.moments` stops the
    gradient through the mean inside the variance); on JAX they agree with
    finite differences to the differences' own accuracy, but that is not yet
    tested. Second-order MAML refuses a model with BatchNormalization on both:
    use `first_order=True` (Reptile is first-order) or
    LayerNormalization/GroupNormalization.

    Args:
        model: a built Keras model (the learner) with trainable weights.
        inner_learning_rate: step size of the inner gradient descent, > 0 (the
            initial value of the learned rates with Meta-SGD).
        inner_steps: inner gradient steps per task during training, >= 1.
        first_order: drop the second-order terms of the meta-gradient.
        learn_inner_learning_rates: Meta-SGD's per-parameter learnable inner rates.

    Call arguments:
        inputs: `(support_x, support_y, query_x)`, each with a leading meta-batch
            axis.
        training: passed to the learner in the inner loop and on the queries.

    Returns:
        The adapted learner's predictions on `query_x`, stacked over tasks.

    Example:

    >>> import keras
    >>> import keras_efficient as ke
    >>> learner = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, "relu"),
    ...                             keras.layers.Dense(1)])
    >>> maml = ke.models.MAML(learner, inner_learning_rate=0.01, inner_steps=1)
    >>> maml.compile(optimizer="adam", loss="mse")
    >>> tasks = ke.data.sinusoid_episodes(n_shot=5, n_query=5, meta_batch_size=4,
    ...                                   num_episodes=8, seed=0)
    >>> history = maml.fit(tasks, epochs=1, verbose=0)
    >>> (support_x, support_y, query_x), query_y = next(iter(tasks))
    >>> adapted = maml.adapt(support_x[0], support_y[0])
    >>> tuple(adapted(query_x[0]).shape)
    (5, 1)

    Reference:
        Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation
        of Deep Networks", ICML 2017. Li, Zhou, Chen and Li, "Meta-SGD: Learning to
        Learn Quickly for Few-Shot Learning", 2017.
    """

    def __init__(self, model, inner_learning_rate=0.01, inner_steps=1, first_order=False,
                 learn_inner_learning_rates=False, **kwargs):
        # Not mixed by default: the learner computes in its own (e.g. bfloat16) dtype
        # while the meta-learner reads the weights unrounded for the inner updates.
        kwargs["dtype"] = kwargs.get("dtype") or keras.config.dtype_policy().variable_dtype
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid type received for argument `model`. Expected a keras.Model. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        if not model.trainable_weights:
            raise ValueError(
                "Invalid value received for argument `model`. Expected a built model "
                "with trainable weights (give it an `keras.Input` or call it once). "
                f"Received: model={model.name} with no trainable weights"
            )
        if keras.backend.backend() not in _BACKENDS:
            raise NotImplementedError(
                f"{type(self).__name__} supports the backends {_BACKENDS}. "
                f"Received: backend {keras.backend.backend()!r}"
            )
        self.inner_learning_rate = validate_number(
            "inner_learning_rate", inner_learning_rate, 0, low_inclusive=False)
        self.inner_steps = validate_size("inner_steps", inner_steps)
        self.first_order = bool(first_order)
        self.learn_inner_learning_rates = bool(learn_inner_learning_rates)
        batch_norm = [layer.name for layer in keras_compat.flatten_layers(model)
                      if isinstance(layer, keras.layers.BatchNormalization)]
        if batch_norm and not self.first_order:
            raise ValueError(
                f"Invalid value received for argument `model`: second-order "
                f"{type(self).__name__} does not support BatchNormalization (its "
                "second-order meta-gradient differs from finite differences by 0.3-1 %: "
                "tf.nn.moments stops the gradient through the mean). Pass "
                "first_order=True or use LayerNormalization/GroupNormalization. "
                f"Received: model with BatchNormalization layers {batch_norm}"
            )
        self.model = model
        self.inner_learning_rates = None
        if self.learn_inner_learning_rates:
            self.inner_learning_rates = [
                self.add_weight(
                    shape=weight.shape,
                    # Not `Constant`: it rounds the value to float32 first.
                    initializer=lambda shape, dtype: ops.full(shape, inner_learning_rate,
                                                              dtype=dtype),
                    name=f"inner_learning_rate_{index}",
                )
                for index, weight in enumerate(model.trainable_weights)
            ]
        self.built = True

    def _learner_state(self):
        """The learner's weights as tensors (the inner gradients are taken w.r.t. them)."""
        return ([ops.copy(variable) for variable in self.model.trainable_variables],
                [ops.copy(variable) for variable in self.model.non_trainable_variables])

    def _task_loss(self, weights, non_trainable, x, y, training):
        """The compiled loss of the learner with `weights` on one task's `(x, y)`."""
        if keras_compat.compiled_loss(self) is None:
            raise ValueError(
                f"{type(self).__name__} adapts with the compiled loss: call "
                "`compile(loss=...)` first."
            )
        y_pred, non_trainable = self.model.stateless_call(weights, non_trainable, x,
                                                          training=training)
        # Keras divides every loss by the replicas in sync (the replicas' gradients are
        # summed); an inner step adapts one task on one replica and must not be divided.
        loss = keras_compat.unscale_loss_for_distribution(
            keras_compat.compiled_loss(self)(y, y_pred))
        return loss, non_trainable

    def _adapt_weights(self, weights, non_trainable, support_x, support_y, steps,
                       training):
        """`steps` inner gradient steps from `weights`: `(task_weights, non_trainable)`."""
        if self.inner_learning_rates is None:
            learning_rates = [self.inner_learning_rate] * len(weights)
        else:
            learning_rates = [ops.cast(rate, weight.dtype)
                              for rate, weight in zip(self.inner_learning_rates, weights)]
        for _ in range(steps):
            gradients, non_trainable = _gradients(
                lambda w, state=non_trainable: self._task_loss(
                    w, state, support_x, support_y, training),
                weights,
            )
            if self.first_order:
                gradients = [ops.stop_gradient(gradient) for gradient in gradients]
            weights = [weight - rate * gradient
                       for weight, rate, gradient in zip(weights, learning_rates, gradients)]
        return weights, non_trainable

    def _adapt_tasks(self, inputs, training):
        """Adapt to every task of the meta-batch: `(task_weights, query_x, state)`.

        The tasks are unrolled in Python (the meta-batch axis is static) and the
        non-trainable state is threaded through them in order.
        """
        support_x, support_y, query_x = inputs
        meta_batch_size = support_x.shape[0]
        if meta_batch_size is None:
            raise ValueError(
                f"{type(self).__name__} needs a static meta-batch size: batch the "
                "episodes with `drop_remainder=True` (as `episode_dataset` does) and "
                "train on one meta-batch size (after several sizes Keras relaxes the "
                "traced shape; `model.make_train_function(force=True)` starts anew). "
                f"Received: support_x with shape {support_x.shape}"
            )
        weights, non_trainable = self._learner_state()
        adapted = []
        for task in range(meta_batch_size):
            task_weights, non_trainable = self._adapt_weights(
                weights, non_trainable, support_x[task], support_y[task], self.inner_steps,
                training)
            adapted.append(task_weights)
        return adapted, query_x, non_trainable

    def _predict_queries(self, adapted, query_x, non_trainable, training):
        predictions = []
        for task, task_weights in enumerate(adapted):
            y_pred, non_trainable = self.model.stateless_call(
                task_weights, non_trainable, query_x[task], training=training)
            predictions.append(y_pred)
        if training:
            for variable, value in zip(self.model.non_trainable_variables, non_trainable):
                variable.assign(value)
        return ops.stack(predictions)

    def _adapt_and_predict(self, task):
        """Inference on one task: adapt on its support set, predict its queries."""
        support_x, support_y, query_x = task
        weights, non_trainable = self._learner_state()
        weights, non_trainable = self._adapt_weights(
            weights, non_trainable, support_x, support_y, self.inner_steps, training=False)
        y_pred, _ = self.model.stateless_call(weights, non_trainable, query_x,
                                              training=False)
        return y_pred

    def call(self, inputs, training=False):
        if not training and inputs[0].shape[0] is None:
            # Keras relaxes the traced shapes after a second meta-batch size; at
            # inference no state is carried between tasks, so a symbolic loop works.
            return ops.map(self._adapt_and_predict, tuple(inputs))
        adapted, query_x, non_trainable = self._adapt_tasks(inputs, training)
        return self._predict_queries(adapted, query_x, non_trainable, training)

    def adapt(self, support_x, support_y, steps=None):
        """Fine-tune a copy of the learner on one task's support set.

        Args:
            support_x, support_y: one task's support set (no meta-batch axis).
            steps: inner gradient steps, >= 1; default `inner_steps` (more steps at
                test time than in training are common, e.g. 10 vs 5 in Finn et al.).

        Returns:
            A copy of the learner (`keras.models.clone_model`) holding the adapted
            weights, for inference; the meta-learned weights are left unchanged.
        """
        steps = self.inner_steps if steps is None else steps
        validate_size("steps", steps)
        weights, non_trainable = self._learner_state()
        weights, non_trainable = self._adapt_weights(
            weights, non_trainable, ops.convert_to_tensor(support_x),
            ops.convert_to_tensor(support_y), steps, training=True)
        adapted = keras.models.clone_model(self.model)
        for variable, value in zip(adapted.trainable_variables, weights):
            variable.assign(value)
        for variable, value in zip(adapted.non_trainable_variables, non_trainable):
            variable.assign(value)
        return adapted

    def get_config(self):
        config = super().get_config()
        config.update({
            "model": keras.saving.serialize_keras_object(self.model),
            "inner_learning_rate": self.inner_learning_rate,
            "inner_steps": self.inner_steps,
            "first_order": self.first_order,
            "learn_inner_learning_rates": self.learn_inner_learning_rates,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "model")
