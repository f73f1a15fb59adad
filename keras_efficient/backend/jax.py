"""JAX side of `keras_efficient.backend`: stateful steps run statelessly.

Keras's JAX trainer calls `train_step(state, data)` (and `test_step`) with
every variable's value in `state` and expects the new values back. A stateful
step runs inside one `keras.StatelessScope` mapping each variable to its value
in `state`: reads see the mapping, writes (optimizer updates, BatchNorm
statistics, metrics) are recorded in it, and the new state is read back from
it. `value_and_gradients` differentiates with `jax.value_and_grad` by putting
the traced values into that same mapping while `fn` runs.

Under `keras.distribution.DataParallel` the step is one jitted program over the
global batch (XLA inserts the cross-device reductions), so losses, gradients
and batch statistics are global: `replicas_in_sync()` is 1.
"""

import contextlib

import jax
import keras

from keras_efficient.backend.keras_compat import get_stateless_scope


def _state_variables(model, training):
    """The variable groups of the state Keras's JAX trainer passes to a step."""
    if training:
        return (model.trainable_variables, model.non_trainable_variables,
                model.optimizer.variables, model.metrics_variables)
    return model.trainable_variables, model.non_trainable_variables, model.metrics_variables


def _run_statelessly(model, step, state, data, training):
    groups = _state_variables(model, training)
    mapping = [pair for variables, values in zip(groups, state)
               for pair in zip(variables, values)]
    with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
        logs = step(data)
    new_state = tuple(
        [scope.get_current_value(variable) for variable in variables] for variables in groups)
    return logs, new_state


class StatefulSteps:
    """Mixin for a `keras.Model` whose steps are `stateful_train_step(data)` and
    optionally `stateful_test_step(data)`: on JAX they run as stateless
    `train_step(state, data)` / `test_step(state, data)` (without
    `stateful_test_step`, Keras's test step)."""

    def train_step(self, state, data):
        return _run_statelessly(self, self.stateful_train_step, state, data, training=True)

    def test_step(self, state, data):
        if not hasattr(self, "stateful_test_step"):
            return super().test_step(state, data)
        return _run_statelessly(self, self.stateful_test_step, state, data, training=False)


def replicas_in_sync():
    """1: under `DataParallel` a step computes on the whole global batch."""
    return 1


def _step_scope():
    scope = get_stateless_scope()
    if scope is None:
        raise RuntimeError(
            "On the JAX backend, `value_and_gradients` runs inside a train step of a "
            "`keras_efficient.backend.StatefulSteps` model (in `fit` or `train_on_batch`)."
        )
    return scope


def _traced(scope, fn, variables):
    """`fn` as a pure function of the values `variables` read in `scope`.

    Returns `(loss, (aux, mapping, losses))`: the scope's mapping and collected
    losses after `fn`, so its writes can be kept once the trace is done.
    """
    def pure(values):
        outer_mapping, outer_losses = scope.state_mapping, scope.losses
        scope.state_mapping = dict(outer_mapping)
        scope.state_mapping.update((id(v), value) for v, value in zip(variables, values))
        scope.losses = list(outer_losses)
        try:
            loss, aux = fn()
            return loss, (aux, scope.state_mapping, scope.losses)
        finally:
            scope.state_mapping, scope.losses = outer_mapping, outer_losses
    return pure


def value_and_gradients(fn, variables):
    """`fn() -> (loss, aux)` and the gradients of `loss` with respect to `variables`.

    Variable writes inside `fn` (BatchNorm statistics, seed states) take
    effect. Every variable gets a gradient (zeros where `loss` does not reach).
    """
    scope = _step_scope()
    values = [scope.get_current_value(v) for v in variables]
    (loss, (aux, mapping, losses)), gradients = jax.value_and_grad(
        _traced(scope, fn, variables), has_aux=True)(values)
    # The differentiated variables keep their values; every other write stays.
    mapping.update((id(v), value) for v, value in zip(variables, values))
    scope.state_mapping, scope.losses = mapping, losses
    return loss, aux, gradients


def stateless_value_and_gradients(fn, variables, values, state):
    """Like `value_and_gradients`, with `variables` reading `values` and the
    `(variable, value)` pairs of `state` reading those values; every write
    inside `fn` is discarded. Gradients are with respect to `values`."""
    scope = _step_scope()
    saved_mapping = scope.state_mapping
    scope.state_mapping = dict(saved_mapping)
    scope.state_mapping.update((id(v), value) for v, value in state)
    try:
        (loss, (aux, _, _)), gradients = jax.value_and_grad(
            _traced(scope, fn, variables), has_aux=True)(list(values))
    finally:
        scope.state_mapping = saved_mapping
    return loss, aux, gradients


def dense_gradient(gradient):
    """JAX gradients are always dense arrays."""
    return gradient


def all_reduce_sum(tensors):
    """`tensors`: a step already computes on the global batch (`replicas_in_sync()` is 1)."""
    return tensors


def all_gather(values):
    """`values`: a step already computes on the global batch (`replicas_in_sync()` is 1)."""
    return values


def replica_offset(values):
    """0: a step's rows are the whole global batch."""
    return 0


def apply_gradients(optimizer, gradients, variables):
    """`optimizer.apply_gradients` of `gradients` to `variables`, the trainable
    variables the optimizer was built for, in its order.

    Through `optimizer.stateless_apply`: the stateful `apply` of some optimizers
    (`LossScaleOptimizer`) writes variables inside a conditional, which JAX's
    conditionals cannot do.
    """
    scope = _step_scope()
    new_variables, new_optimizer_variables = optimizer.stateless_apply(
        [scope.get_current_value(v) for v in optimizer.variables], gradients,
        [scope.get_current_value(v) for v in variables])
    for variable, value in zip(list(variables) + list(optimizer.variables),
                               list(new_variables) + list(new_optimizer_variables)):
        variable.assign(value)


def float64_scope():
    """A context in which float64 tensors stay float64 (JAX makes them float32 by default)."""
    return jax.enable_x64(True)


def variable_scope(model):
    """Where variables for `model`'s training are created: anywhere (the
    current `keras.distribution` lays out new variables by itself)."""
    return contextlib.nullcontext()


def _with_writes(fn, variables):
    """`fn` returning `(output, values of variables after fn)`, writing nothing."""
    def run():
        outer = get_stateless_scope()
        scope = keras.StatelessScope(initialize_variables=False)
        if outer is not None:
            scope.state_mapping = dict(outer.state_mapping)
        with scope:
            output = fn()
        return output, [scope.get_current_value(v) for v in variables]
    return run


def cond(pred, true_fn, false_fn, variables):
    """`keras.ops.cond` whose branches may write `variables` (BatchNorm statistics).

    A JAX conditional cannot write variables: each branch runs in a stateless
    scope and returns the variables' new values, written after the conditional.
    """
    variables = [v for v in variables if v.value is not None]
    current = [v.value for v in variables]

    def branch(fn):
        def run():
            output, values = _with_writes(fn, variables)()
            return output, [old if new is None else new for old, new in zip(current, values)]
        return run

    output, values = keras.ops.cond(pred, branch(true_fn), branch(false_fn))
    for variable, value in zip(variables, values):
        variable.assign(value)
    return output


def compiled(fn):
    """`fn` compiled with `jax.jit`; arrays are its traced arguments."""
    return jax.jit(fn)
