"""TensorFlow ops inside `tf.data` on any Keras backend, as Keras's preprocessing layers do.

A `tf.data` map runs in a TensorFlow graph, where JAX ops cannot run, so on the
JAX backend an augmentation written in `keras.ops` fails there. Keras's own
preprocessing layers (`RandomFlip`, `RandomColorJitter`, ...) derive from
`DataLayer`, whose `__call__` switches the layer's `self.backend` to TensorFlow
inside a TensorFlow graph that no JAX function traces (a `tf.data` map) and
keeps Keras's backend everywhere else (eager calls, a model's step); its
`_get_seed_generator(self.backend.name)` gives a seed generator on the backend
in use. Layers written with `self.backend` ops instead of `keras.ops` run in
both places.

Keras exports none of this publicly: it comes from `keras_compat`, the
package's one place for private Keras API.
"""

from keras_efficient.backend.keras_compat import DataLayer
from keras_efficient.backend.keras_compat import DynamicBackend
from keras_efficient.backend.keras_compat import in_tf_graph
from keras_efficient.backend.keras_compat import is_in_jax_tracing_scope

__all__ = ["DataLayer", "DynamicBackend", "data_backend"]


def data_backend(tensor):
    """The backend ops for `tensor` in a function that is not a layer.

    TensorFlow's inside a `tf.data` map, Keras's backend otherwise: the choice
    `DataLayer.__call__` makes for a layer, for plain batch transforms.
    """
    backend = DynamicBackend()
    if in_tf_graph() and not is_in_jax_tracing_scope(tensor):
        backend.set_backend("tensorflow")
    return backend
