"""One strategy factory so the same script runs on CPU, GPUs, several machines and TPU."""

import dataclasses
import logging
import os

import tensorflow as tf

from keras_efficient.distribute.multi_worker import cluster_workers
from keras_efficient.distribute.multi_worker import patch_keras_for_multi_worker
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice

logger = logging.getLogger("keras_efficient")

STRATEGY_KINDS = ("auto", "tpu", "mirrored", "multi_worker", "gpu", "cpu")

#: Environment variables that say a notebook runs next to a TPU.
TPU_ENVIRONMENT_VARIABLES = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "KAGGLE_TPU")


@dataclasses.dataclass(frozen=True)
class StrategyChoice:
    """What `get_strategy` chose and why (also shown by `keras-efficient info`)."""

    kind: str
    reason: str
    devices: tuple = ()


def _tpu_candidates(tpu):
    """The `TPUClusterResolver(tpu=...)` arguments worth trying, in order."""
    if tpu is not None:
        return [tpu]
    if os.environ.get("COLAB_TPU_ADDR"):
        # Colab's older TPU-node runtime.
        return ["grpc://" + os.environ["COLAB_TPU_ADDR"]]
    if os.environ.get("TPU_NAME"):
        return [os.environ["TPU_NAME"]]
    # TPU VMs (current Colab and Kaggle): the TPU is attached locally.
    return ["local", None]


def _tpu_requested_by_environment():
    return any(os.environ.get(name) for name in TPU_ENVIRONMENT_VARIABLES)


def _connect_tpu(tpu):
    """Connect to a TPU; return `(strategy, address)` or raise a `RuntimeError`."""
    attempts = []
    for candidate in _tpu_candidates(tpu):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=candidate)
            if candidate != "local":
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver), candidate
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            attempts.append(f"TPUClusterResolver(tpu={candidate!r}): {error}")
    raise RuntimeError(
        "Could not reach a TPU. Tried:\n  " + "\n  ".join(attempts) + "\nSet `tpu=` to the "
        "TPU's name or grpc address, or choose another kind (e.g. kind='auto')."
    )


def _gpus():
    return [device.name for device in tf.config.list_logical_devices("GPU")]


@export("keras_efficient.distribute.choose_strategy")
def choose_strategy(kind="auto", tpu=None):
    """Decide which strategy `get_strategy(kind, tpu)` builds, without building it.

    Returns:
        A `StrategyChoice` with the resolved kind ("tpu", "multi_worker",
        "mirrored", "gpu", "cpu" or "default"), the reason, and the devices.
    """
    validate_choice("kind", kind, STRATEGY_KINDS)
    if kind != "auto":
        return _explicit_choice(kind, tpu)
    if tpu is not None or _tpu_requested_by_environment():
        return StrategyChoice("tpu", "a TPU is named by the `tpu` argument or the environment")
    return _choice_without_tpu()


def _choice_without_tpu(prefix=""):
    """The automatic choice once a TPU is ruled out."""
    workers = cluster_workers()
    # Checked before GPUs: several machines with several GPUs each want MultiWorker.
    if len(workers) > 1:
        return StrategyChoice("multi_worker", f"{prefix}TF_CONFIG names {len(workers)} workers",
                              tuple(workers))
    gpus = _gpus()
    if len(gpus) > 1:
        return StrategyChoice("mirrored", f"{prefix}{len(gpus)} GPUs on this machine",
                              tuple(gpus))
    if len(gpus) == 1:
        return StrategyChoice("gpu", f"{prefix}one GPU on this machine", tuple(gpus))
    return StrategyChoice("default", f"{prefix}no TPU, GPU or cluster found: Keras's default "
                          "strategy", ("/cpu:0",))


def _explicit_choice(kind, tpu):
    if kind == "tpu":
        return StrategyChoice("tpu", "requested: kind='tpu'")
    if kind == "multi_worker":
        workers = cluster_workers()
        if not workers:
            raise ValueError(
                "kind='multi_worker' needs TF_CONFIG naming the cluster's workers, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}. TF_CONFIG is unset or names none.'
            )
        return StrategyChoice("multi_worker", "requested: kind='multi_worker'", tuple(workers))
    gpus = _gpus()
    if kind == "gpu":
        if not gpus:
            raise ValueError("kind='gpu' was requested but TensorFlow sees no GPU.")
        return StrategyChoice("gpu", "requested: kind='gpu'", (gpus[0],))
    if kind == "mirrored":
        devices = tuple(gpus) or tuple(d.name for d in tf.config.list_logical_devices("CPU"))
        return StrategyChoice("mirrored", "requested: kind='mirrored'", devices)
    return StrategyChoice("cpu", "requested: kind='cpu'", ("/cpu:0",))


@export("keras_efficient.distribute.get_strategy")
def get_strategy(kind="auto", tpu=None):
    """Return the `tf.distribute.Strategy` for this machine, and log why.

    With `kind="auto"`: a TPU (named by `tpu` or by the Colab/Kaggle environment
    variables) gives `TPUStrategy`; TF_CONFIG naming several workers gives
    `MultiWorkerMirroredStrategy`; several GPUs give `MirroredStrategy`; one GPU
    gives `OneDeviceStrategy` on it; otherwise Keras's default strategy. An
    automatic TPU that cannot be reached falls back to the next rule with a
    warning; an explicitly requested one raises.

    Args:
        kind: one of "auto", "tpu", "mirrored", "multi_worker", "gpu", "cpu".
        tpu: TPU name or grpc address for `TPUClusterResolver` (optional).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: for an unknown kind, or a kind this machine cannot provide.
        RuntimeError: when `kind="tpu"` and no TPU could be reached (the message
            lists every address tried).

    Example:

    >>> strategy = get_strategy("cpu")
    >>> with strategy.scope():
    ...     model = keras.Sequential([keras.layers.Dense(1)])
    """
    choice = choose_strategy(kind, tpu)
    if choice.kind == "tpu":
        try:
            strategy, address = _connect_tpu(tpu)
        except RuntimeError as error:
            if kind == "tpu":
                raise
            logger.warning("%s Falling back.", error)
            return _build(_choice_without_tpu("TPU unreachable; "))
        logger.info("keras_efficient: TPUStrategy at %r (%s)", address, choice.reason)
        return strategy
    return _build(choice)


def _build(choice):
    logger.info("keras_efficient: %s strategy (%s)", choice.kind, choice.reason)
    if choice.kind == "multi_worker":
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if choice.kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(choice.devices))
    if choice.kind in ("gpu", "cpu"):
        return tf.distribute.OneDeviceStrategy(choice.devices[0])
    return tf.distribute.get_strategy()
