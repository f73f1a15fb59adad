"""What `keras-efficient info` reports about this machine and its choices."""

import importlib.metadata
import platform

import keras
import tensorflow as tf

from keras_efficient.distribute.strategy import STRATEGY_KINDS
from keras_efficient.distribute.strategy import choose_strategy
from keras_efficient.distribute.xla import jit_compile_for_device
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice

_PACKAGES = ("keras-efficient", "tensorflow", "keras", "jax", "keras-hub", "tensorflow-text",
             "tensorflow-hub", "tensorflow-datasets", "scikit-learn", "numpy")


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _device_type_of(choice):
    if choice.kind == "tpu":
        return "TPU"
    return "GPU" if any("GPU" in device.upper() for device in choice.devices) else "CPU"


@export("keras_efficient.distribute.describe")
def describe(kind="auto", tpu=None):
    """A dict: backend, versions, devices, chosen strategy, XLA choice, dtype policy.

    Nothing is connected or built: the strategy is the one `get_strategy(kind,
    tpu)` would choose, with its reason.
    """
    validate_choice("kind", kind, STRATEGY_KINDS)  # also on JAX, which ignores it
    if keras.backend.backend() == "jax":
        return _describe_jax()
    choice = choose_strategy(kind, tpu)
    return {
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in _PACKAGES},
        "devices": [f"{d.device_type}: {d.name}" for d in tf.config.list_logical_devices()],
        "strategy": {"kind": choice.kind, "reason": choice.reason,
                     "devices": list(choice.devices)},
        "jit_compile": jit_compile_for_device(_device_type_of(choice)),
        "dtype_policy": keras.config.dtype_policy().name,
    }


def _describe_jax():
    """On JAX: the devices JAX sees and `get_distribution()`'s data parallelism."""
    import jax

    devices = [f"{d.platform.upper()}: {d}" for d in jax.devices()]
    return {
        "backend": "jax",
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in _PACKAGES},
        "devices": devices,
        "strategy": {"kind": "data_parallel",
                     "reason": f"JAX backend: keras.distribution.DataParallel over "
                               f"{len(devices)} device(s) (ke.distribute.get_distribution())",
                     "devices": devices},
        "jit_compile": True,  # JAX always compiles its steps with XLA
        "dtype_policy": keras.config.dtype_policy().name,
    }


@export("keras_efficient.distribute.format_description")
def format_description(description):
    """`describe()` as aligned text lines."""
    lines = [
        f"backend        {description['backend']} (Python {description['python']})",
        "versions",
    ]
    lines += [f"  {name:<20} {version}" for name, version in description["versions"].items()]
    lines.append("devices")
    lines += [f"  {device}" for device in description["devices"]]
    strategy = description["strategy"]
    lines.append(f"strategy       {strategy['kind']}: {strategy['reason']}")
    lines.append(f"jit_compile    {description['jit_compile']}")
    lines.append(f"dtype policy   {description['dtype_policy']}")
    return "\n".join(lines)
