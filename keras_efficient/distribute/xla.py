"""An explicit XLA policy.

Keras's `jit_compile="auto"` turns XLA off on CPU-only machines and whenever a
distribution strategy is in use, so it never compiles a distributed GPU run.
`jit_compile_for` decides per device type instead: XLA on TPU (always
compiled there) and GPU, off on CPU; the distribution card (README.md in this
folder) has the measurements behind it (`keras-efficient bench xla`).
"""

import os

import tensorflow as tf

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice

#: Environment variable that overrides the policy: 1/true/on or 0/false/off.
JIT_ENVIRONMENT_VARIABLE = "KERAS_EFFICIENT_JIT_COMPILE"

#: The choice per device type (the card says what it was measured on).
JIT_BY_DEVICE_TYPE = {"TPU": True, "GPU": True, "CPU": False}

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")


def _device_type(strategy):
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "TPU"
    if _is_jax_distribution(strategy):  # devices named "tpu:0", "cpu:1", ...
        devices = [str(device) for device in strategy.device_mesh.devices.flat]
    else:
        try:
            devices = strategy.extended.worker_devices
        except RuntimeError:  # the default strategy has no device list
            devices = ()
    if not devices:
        # The default strategy: whatever TensorFlow would place ops on.
        return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    names = " ".join(devices).upper()
    for device_type in ("TPU", "GPU"):
        if f"{device_type}:" in names:
            return device_type
    return "CPU"


def _is_jax_distribution(strategy):
    """A `keras.distribution.Distribution` (`DataParallel`, `ModelParallel`) of JAX."""
    return hasattr(strategy, "device_mesh")


@export("keras_efficient.distribute.jit_compile_for")
def jit_compile_for(strategy=None):
    """Whether to pass `jit_compile=True` to `compile` for `strategy`'s devices.

    Args:
        strategy: a `tf.distribute.Strategy`, or on JAX a
            `keras.distribution.Distribution` (`get_distribution()`); default:
            the current `tf.distribute` strategy.

    Returns:
        A bool: True for a JAX distribution (JAX compiles every step); else the
        `KERAS_EFFICIENT_JIT_COMPILE` environment variable when set, else
        `JIT_BY_DEVICE_TYPE` for the strategy's device type.

    Example:

    >>> model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile_for())
    """
    if _is_jax_distribution(strategy):
        return True  # JAX compiles every step with XLA (without jit it runs op by op)
    return jit_compile_for_device(_device_type(strategy))


def jit_compile_for_device(device_type):
    """The XLA choice for a device type ("CPU", "GPU" or "TPU"), override included."""
    validate_choice("device_type", device_type, JIT_BY_DEVICE_TYPE)
    override = os.environ.get(JIT_ENVIRONMENT_VARIABLE)
    if override is not None and override.strip() != "":
        value = override.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(
            f"Invalid value in environment variable {JIT_ENVIRONMENT_VARIABLE}. Expected one "
            f"of {_TRUE + _FALSE}. Received: {override!r}"
        )
    return JIT_BY_DEVICE_TYPE[device_type]
