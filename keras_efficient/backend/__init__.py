"""Train-step pieces that differ per Keras backend, behind one interface.

A model that needs its own gradient logic (SAM's two passes, the
self-supervised models' target update) writes its step once, statefully: it
reads variables, takes gradients with `value_and_gradients`, applies them with
the optimizer and assigns to variables, as a TensorFlow train step does.
`StatefulSteps` runs that step as Keras's trainer for the backend expects:
directly on TensorFlow, and on JAX inside a `keras.StatelessScope` that maps
every model variable to the step's `state` and returns the new state, the way
`optimizer.stateless_apply` runs `optimizer.apply`.

The split follows Keras's own trainers (`keras/src/backend/{tensorflow,jax}/
trainer.py`); the functions here are the only per-backend code of those models.
"""

import keras

if keras.backend.backend() == "jax":
    from keras_efficient.backend.jax import StatefulSteps
    from keras_efficient.backend.jax import all_gather
    from keras_efficient.backend.jax import all_reduce_sum
    from keras_efficient.backend.jax import apply_gradients
    from keras_efficient.backend.jax import compiled
    from keras_efficient.backend.jax import cond
    from keras_efficient.backend.jax import dense_gradient
    from keras_efficient.backend.jax import float64_scope
    from keras_efficient.backend.jax import replica_offset
    from keras_efficient.backend.jax import replicas_in_sync
    from keras_efficient.backend.jax import stateless_value_and_gradients
    from keras_efficient.backend.jax import value_and_gradients
    from keras_efficient.backend.jax import variable_scope
else:
    from keras_efficient.backend.tensorflow import StatefulSteps
    from keras_efficient.backend.tensorflow import all_gather
    from keras_efficient.backend.tensorflow import all_reduce_sum
    from keras_efficient.backend.tensorflow import apply_gradients
    from keras_efficient.backend.tensorflow import compiled
    from keras_efficient.backend.tensorflow import cond
    from keras_efficient.backend.tensorflow import dense_gradient
    from keras_efficient.backend.tensorflow import float64_scope
    from keras_efficient.backend.tensorflow import replica_offset
    from keras_efficient.backend.tensorflow import replicas_in_sync
    from keras_efficient.backend.tensorflow import stateless_value_and_gradients
    from keras_efficient.backend.tensorflow import value_and_gradients
    from keras_efficient.backend.tensorflow import variable_scope
