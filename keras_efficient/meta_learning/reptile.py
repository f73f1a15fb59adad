"""Reptile: first-order meta-learning by moving towards the adapted weights."""

from keras import ops

from keras_efficient.meta_learning.maml import MAML
from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register("keras_efficient.models.Reptile")
class Reptile(MAML):
    """Reptile: move the initialization towards the weights adapted to each task.

    For every task of a meta-batch, `inner_steps` steps of gradient descent on the
    support set (with the compiled loss) turn the weights `theta` into `phi`; the
    meta-update is `theta <- theta + meta_step_size * (mean_tasks(phi) - theta)`.
    `fit` hands the optimizer the direction `meta_step_size * (theta - mean(phi))`
    as the gradient, so with `keras.optimizers.SGD(learning_rate=1.0)` a step is
    exactly the update above (Nichol et al. also run Adam on this direction); the
    loss shown is the query loss after adaptation. Unlike keras-io's Reptile
    example (one task at a time, `get_weights`/`set_weights` in Python), the whole
    meta-batch is one compiled step. The inner steps are full-batch steps on the
    support set; episodes, `predict` and `adapt` work as in `MAML`.

    Args:
        model: a built Keras model (the learner) with trainable weights.
        inner_learning_rate: step size of the inner gradient descent, > 0.
        inner_steps: inner gradient steps per task, >= 1.
        meta_step_size: fraction of the way towards the adapted weights, in (0, 1].

    Call arguments:
        inputs: `(support_x, support_y, query_x)`, each with a leading meta-batch
            axis.
        training: passed to the learner.

    Returns:
        The adapted learner's predictions on `query_x`, stacked over tasks.

    Example:

    >>> import keras
    >>> import keras_efficient as ke
    >>> learner = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, "relu"),
    ...                             keras.layers.Dense(1)])
    >>> reptile = ke.models.Reptile(learner, inner_learning_rate=0.02, inner_steps=5,
    ...                             meta_step_size=0.1)
    >>> reptile.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    >>> tasks = ke.data.sinusoid_episodes(n_shot=10, n_query=10, meta_batch_size=4,
    ...                                   num_episodes=8, seed=0)
    >>> history = reptile.fit(tasks, epochs=1, verbose=0)

    Reference:
        Nichol, Achiam and Schulman, "On First-Order Meta-Learning Algorithms", 2018.
    """

    def __init__(self, model, inner_learning_rate=0.01, inner_steps=5, meta_step_size=0.1,
                 **kwargs):
        super().__init__(model, inner_learning_rate, inner_steps, first_order=True, **kwargs)
        self.meta_step_size = validate_number("meta_step_size", meta_step_size, 0, 1,
                                              low_inclusive=False)

    def _meta_direction_loss(self, adapted):
        """A loss of value 0 whose gradient is `meta_step_size * (theta - mean(phi))`."""
        total = 0.0
        for index, variable in enumerate(self.model.trainable_variables):
            mean_adapted = ops.mean(ops.stack([task[index] for task in adapted]), axis=0)
            direction = ops.stop_gradient(self.meta_step_size * (variable - mean_adapted))
            total = total + ops.sum(variable * direction)
        # Keras divides an added loss by the replicas in sync, whose gradients it sums.
        return total - ops.stop_gradient(total)

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs, training=False)
        adapted, query_x, non_trainable = self._adapt_tasks(inputs, training)
        adapted = [[ops.stop_gradient(weight) for weight in task] for task in adapted]
        self.add_loss(self._meta_direction_loss(adapted))
        return self._predict_queries(adapted, query_x, non_trainable, training)

    def get_config(self):
        config = super().get_config()
        del config["first_order"], config["learn_inner_learning_rates"]
        config["meta_step_size"] = self.meta_step_size
        return config
