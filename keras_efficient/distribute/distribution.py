"""Data parallelism on the JAX backend: the counterpart of `get_strategy`."""

import logging
import os

import keras

from keras_efficient.utils import export

logger = logging.getLogger("keras_efficient")

#: Set by a multi-host launch (see `keras.distribution.initialize`).
_MULTI_HOST_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"


@export("keras_efficient.distribute.get_distribution")
def get_distribution():
    """`keras.distribution.DataParallel` over every device of the job (JAX backend).

    On JAX, Keras distributes training with a `keras.distribution.Distribution`
    rather than a `tf.distribute.Strategy`: with `DataParallel` each step is
    one jitted program over the global batch, split along the batch over the
    devices (TPU cores, GPUs), with the variables replicated. Losses, gradients
    and BatchNorm statistics are therefore global, as under a synchronized
    `MirroredStrategy`. On several hosts (a TPU pod slice), set
    `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID` and
    `KERAS_DISTRIBUTION_JOB_ADDRESSES` (or nothing on Cloud TPU, where JAX finds
    the hosts) and `keras.distribution.initialize()` runs first.

    Use it as `keras.distribution.set_distribution(get_distribution())`, or
    build, compile and fit inside `with get_distribution().scope():`.

    Returns:
        A `keras.distribution.DataParallel` over all devices.

    Raises:
        RuntimeError: on the TensorFlow backend (use `get_strategy()` there).

    Example:

    ```python
    os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported
    import keras, keras_efficient as ke
    keras.distribution.set_distribution(ke.distribute.get_distribution())
    ```
    """
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            "`get_distribution()` gives the JAX backend's data parallelism. On the "
            f"{keras.backend.backend()} backend use `ke.distribute.get_strategy()`; for "
            "TPUs set KERAS_BACKEND=jax before importing Keras."
        )
    if int(os.environ.get(_MULTI_HOST_VARIABLE, "1")) > 1:
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    logger.info("keras_efficient: DataParallel over %d device(s): %s", len(devices), devices)
    return keras.distribution.DataParallel(devices=devices)
