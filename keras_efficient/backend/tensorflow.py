"""TensorFlow side of `keras_efficient.backend`: tapes and `tf.distribute` replicas."""

import contextlib

import keras
import tensorflow as tf


class StatefulSteps:
    """Mixin for a `keras.Model` whose steps are `stateful_train_step(data)` and
    optionally `stateful_test_step(data)`: on TensorFlow they are the train and
    test steps (without `stateful_test_step`, Keras's test step)."""

    def train_step(self, data):
        return self.stateful_train_step(data)

    def test_step(self, data):
        if not hasattr(self, "stateful_test_step"):
            return super().test_step(data)
        return self.stateful_test_step(data)


def replicas_in_sync():
    """How many replicas each compute a share of the step (1 outside a strategy).

    A loss reduced by a Keras loss is already divided by this count.
    """
    return tf.distribute.get_strategy().num_replicas_in_sync


def value_and_gradients(fn, variables):
    """`fn() -> (loss, aux)` and the gradients of `loss` with respect to `variables`.

    Variable writes inside `fn` (BatchNorm statistics, seed states) take
    effect. A variable `loss` does not reach gets `None`.
    """
    with tf.GradientTape() as tape:
        loss, aux = fn()
    return loss, aux, tape.gradient(loss, variables)


def stateless_value_and_gradients(fn, variables, values, state):
    """Like `value_and_gradients`, with `variables` reading `values` and the
    `(variable, value)` pairs of `state` reading those values; every write
    inside `fn` is discarded. Gradients are with respect to `values`."""
    mapping = list(zip(variables, values)) + list(state)
    with tf.GradientTape() as tape:
        tape.watch(values)
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
            loss, aux = fn()
    return loss, aux, tape.gradient(loss, values)


def dense_gradient(gradient):
    """Embedding gradients arrive as `IndexedSlices`; arithmetic and `cond` need tensors."""
    return tf.convert_to_tensor(gradient)


def all_reduce_sum(tensors):
    """The sum of `tensors` over the replicas of the current `tf.distribute` step."""
    return tf.distribute.get_replica_context().all_reduce("sum", tensors)


def _multi_replica_context():
    """The replica context of a step on several replicas, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def all_gather(values):
    """`values` (a tensor or a list of them) of every replica, stacked along the batch.

    `values` itself outside a step on several replicas. The backward pass of
    `ReplicaContext.all_gather` is correct: the gradient arriving at the
    gathered tensor is summed over replicas and sliced back to each replica's
    rows, so every example gets the gradient it causes on every replica.
    """
    context = _multi_replica_context()
    if context is None:
        return values
    return context.all_gather(values, axis=0)


def replica_offset(values):
    """Where this replica's rows of `values` start in `all_gather(values)` (0 on one replica).

    Replicas may hold different batch sizes (the last batch of an epoch).
    """
    context = _multi_replica_context()
    if context is None:
        return 0
    sizes = context.all_gather(tf.shape(values)[:1], axis=0)
    return tf.reduce_sum(sizes[: context.replica_id_in_sync_group])


def apply_gradients(optimizer, gradients, variables):
    """`optimizer.apply_gradients` of `gradients` to `variables`."""
    optimizer.apply_gradients(zip(gradients, variables))


def float64_scope():
    """A context in which float64 tensors stay float64 (always so on TensorFlow)."""
    return contextlib.nullcontext()


def variable_scope(model):
    """Where variables for `model`'s training are created: its strategy's scope."""
    return model.distribute_strategy.scope()


def cond(pred, true_fn, false_fn, variables):
    """`keras.ops.cond` whose branches may write `variables` (BatchNorm statistics)."""
    del variables  # TensorFlow's conditionals write variables themselves.
    return keras.ops.cond(pred, true_fn, false_fn)


def compiled(fn):
    """`fn` traced once into a graph (TensorFlow's own kernels: on CPU they beat XLA
    for these small ops); tensors and numpy arrays are its traced arguments."""
    return tf.function(fn, autograph=False, reduce_retracing=True)
