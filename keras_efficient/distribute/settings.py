"""Per-device training settings: what `compile` and the input pipeline should use."""

import dataclasses

import tensorflow as tf

from keras_efficient.distribute.xla import _device_type
from keras_efficient.distribute.xla import _is_jax_distribution
from keras_efficient.distribute.xla import jit_compile_for
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_size

#: Steps per `tf.function` call on a TPU: amortizes the host round trip per step.
TPU_STEPS_PER_EXECUTION = 32

DEVICE_TYPES = ("CPU", "GPU", "TPU")
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """Settings for one device type.

    Attributes:
        device_type: "CPU", "GPU" or "TPU".
        jit_compile: for `compile(jit_compile=...)` (see `jit_compile_for`).
        steps_per_execution: for `compile(steps_per_execution=...)`.
        dtype_policy: for `keras.config.set_dtype_policy` before building models.
        drop_remainder: for `dataset.batch(..., drop_remainder=...)`: TPUs need
            static shapes, and JAX's `DataParallel` batches that split evenly over
            its devices, so the last partial batch is dropped there.
        num_replicas: the strategy's replicas; global batches must be a multiple.
    """

    device_type: str
    jit_compile: bool
    steps_per_execution: int
    dtype_policy: str
    drop_remainder: bool
    num_replicas: int

    def __post_init__(self):
        validate_choice("device_type", self.device_type, DEVICE_TYPES)
        validate_size("steps_per_execution", self.steps_per_execution)
        validate_choice("dtype_policy", self.dtype_policy, DTYPE_POLICIES)
        validate_size("num_replicas", self.num_replicas)

    def check_batch_size(self, global_batch_size):
        """Raise a `ValueError` unless the global batch splits evenly over replicas."""
        validate_size("batch_size", global_batch_size)
        if global_batch_size % self.num_replicas:
            raise ValueError(
                f"Invalid value received for argument `batch_size`. Expected a multiple of "
                f"the {self.num_replicas} replicas. Received: batch_size={global_batch_size}"
            )
        return global_batch_size


@export("keras_efficient.distribute.recommended_settings")
def recommended_settings(strategy=None):
    """The settings we recommend for `strategy`'s devices.

    TPU: XLA (always on there), 32 steps per execution, `mixed_bfloat16`, static
    batch shapes. GPU: XLA, float32 (choose `mixed_bfloat16` yourself on Ampere
    or newer). CPU: no XLA (see `jit_compile_for`), float32. `strategy` is a
    `tf.distribute.Strategy`, or on JAX the `keras.distribution.DataParallel`
    of `get_distribution()`.

    Example:

    >>> settings = recommended_settings(strategy)
    >>> keras.config.set_dtype_policy(settings.dtype_policy)
    >>> dataset = dataset.batch(settings.check_batch_size(256),
    ...                         drop_remainder=settings.drop_remainder)
    """
    strategy = strategy or tf.distribute.get_strategy()
    device_type = _device_type(strategy)
    on_tpu = device_type == "TPU"
    num_replicas = _num_replicas(strategy)
    return TrainingSettings(
        device_type=device_type,
        jit_compile=jit_compile_for(strategy),
        steps_per_execution=TPU_STEPS_PER_EXECUTION if on_tpu else 1,
        dtype_policy="mixed_bfloat16" if on_tpu else "float32",
        # JAX's DataParallel splits every batch evenly over its devices.
        drop_remainder=on_tpu or (_is_jax_distribution(strategy) and num_replicas > 1),
        num_replicas=num_replicas,
    )


def _num_replicas(strategy):
    if _is_jax_distribution(strategy):  # DataParallel: the batch splits over every device
        return strategy.device_mesh.devices.size
    return strategy.num_replicas_in_sync
