"""One harness that checks every public layer, loss, schedule and model alike.

Each `check_*` function runs a list of named checks (all by default), and each
check raises `AssertionError` with a message saying what differed:

- `config`: `from_config(get_config())` gives the same config and the same numbers.
- `saving`: a `.keras` file saved and reloaded (without `custom_objects`, so the
  object must be registered) gives identical outputs.
- `jit`: the object under `jit_compile=True` gives the eager result.
- `bfloat16`: under the `mixed_bfloat16` policy it computes in bfloat16 where it
  should, keeps float32 variables, stays finite and close to float32.
- `replicas`: one training step over two CPU devices gives the one-device
  result on the same global batch: `MirroredStrategy` over two logical CPU
  devices on TensorFlow, `keras.distribution.DataParallel` over two host
  devices on JAX.

Tests usually parametrize over the checks so each one is reported on its own:

```python
import pytest
from keras_efficient import testing

@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_harness(check):
    testing.check_layer(MyLayer, {"units": 3}, x, checks=[check])
```

Tests that use `replicas` need two logical CPU devices, made by `split_cpu()`
before TensorFlow initializes, and on JAX two host devices, made by
`XLA_FLAGS=--xla_force_host_platform_device_count=2` before JAX initializes
(this repository's `tests/conftest.py` does both).
"""

import contextlib
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.utils import export

LAYER_CHECKS = ("config", "saving", "jit", "bfloat16", "replicas")
export("keras_efficient.testing.LAYER_CHECKS")(LAYER_CHECKS)
LOSS_CHECKS = ("config", "saving", "jit", "bfloat16", "replicas")
export("keras_efficient.testing.LOSS_CHECKS")(LOSS_CHECKS)
SCHEDULE_CHECKS = ("config", "saving", "jit", "bfloat16", "replicas")
export("keras_efficient.testing.SCHEDULE_CHECKS")(SCHEDULE_CHECKS)
MODEL_CHECKS = ("config", "saving", "jit", "bfloat16", "replicas")
export("keras_efficient.testing.MODEL_CHECKS")(MODEL_CHECKS)

_SEED = 1234


@export("keras_efficient.testing.split_cpu")
def split_cpu(num_devices=2):
    """Split the physical CPU into `num_devices` logical devices.

    Must run before TensorFlow initializes its devices (before the first op).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


_STRATEGY = None


@export("keras_efficient.testing.two_replica_strategy")
def two_replica_strategy():
    """Two-device data parallelism for the current backend (cached).

    TensorFlow: a `MirroredStrategy` over the first two logical CPU devices.
    JAX: a `keras.distribution.DataParallel` over the first two CPU devices.
    Both have `scope()`: build, compile and fit inside it.
    """
    global _STRATEGY
    if _STRATEGY is None and keras.backend.backend() == "jax":
        import jax

        cpus = jax.devices("cpu")
        if len(cpus) < 2:
            raise RuntimeError(
                "The `replicas` check needs two CPU devices. Set "
                "`XLA_FLAGS=--xla_force_host_platform_device_count=2` before JAX "
                f"initializes (for example in conftest.py). Found: {cpus}"
            )
        _STRATEGY = keras.distribution.DataParallel(devices=cpus[:2])
    if _STRATEGY is None:
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) < 2:
            raise RuntimeError(
                "The `replicas` check needs two logical CPU devices. Call "
                "`keras_efficient.testing.split_cpu()` before TensorFlow initializes "
                f"(for example in conftest.py). Found: {[d.name for d in cpus]}"
            )
        _STRATEGY = tf.distribute.MirroredStrategy([cpu.name for cpu in cpus[:2]])
    return _STRATEGY


@export("keras_efficient.testing.dtype_policy")
@contextlib.contextmanager
def dtype_policy(name):
    """Set the global Keras dtype policy inside the block, restore it after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@export("keras_efficient.testing.on_two_devices")
def on_two_devices(fn, *arrays):
    """`fn(*arrays)` under `jax.jit`, each array's batch split over two devices.

    JAX only: the way `keras.distribution.DataParallel` lays out a global
    batch, so a test can check that a function of the batch (a loss, its
    gradient) gives the one-device result. Returns numpy outputs.
    """
    import jax

    distribution = two_replica_strategy()
    sharded = [jax.device_put(np.asarray(a), distribution.get_data_layout(np.shape(a))
                              .backend_layout) for a in arrays]
    if any(len(a.sharding.device_set) != 2 for a in sharded):
        raise AssertionError("on_two_devices: the batch is not split over two devices")
    return keras.tree.map_structure(_numpy, jax.jit(fn)(*sharded))


@export("keras_efficient.testing.gradients")
def gradients(fn, *inputs):
    """`fn(*inputs)` (a scalar) and its gradients with respect to each input.

    On either backend; an input `fn` does not reach gets a zero gradient.

    Returns:
        `(value, [gradient of each input])` as numpy arrays.
    """
    inputs = [keras.ops.convert_to_tensor(np.asarray(x)) for x in inputs]
    if keras.backend.backend() == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(inputs))))(*inputs)
    else:
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = fn(*inputs)
        grads = tape.gradient(value, inputs, unconnected_gradients="zero")
    return _numpy(value), [_numpy(g) for g in grads]


def _validate_checks(checks, allowed):
    # Before any check runs: a misspelled name fails at once, not after the slow ones.
    for check in checks:
        if check not in allowed:
            raise ValueError(f"Unknown check {check!r}; expected one of {allowed}")


def _fresh(kwargs):
    # A callable gives fresh objects (e.g. a wrapped layer) for every construction.
    return dict(kwargs() if callable(kwargs) else kwargs)


def _numpy(value):
    return keras.ops.convert_to_numpy(value)


def _assert_close(actual, expected, atol, what, rtol=0.0):
    actual = [np.asarray(_numpy(a), dtype=np.float64) for a in _as_list(actual)]
    expected = [np.asarray(_numpy(e), dtype=np.float64) for e in _as_list(expected)]
    if len(actual) != len(expected):
        raise AssertionError(f"{what}: {len(actual)} tensors vs {len(expected)} expected")
    for index, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(
            a, e, atol=atol, rtol=rtol, err_msg=f"{what} (tensor {index})"
        )


def _assert_finite(values, what):
    for index, value in enumerate(_as_list(values)):
        if not np.all(np.isfinite(np.asarray(_numpy(value), dtype=np.float64))):
            raise AssertionError(f"{what}: tensor {index} has non-finite values")


def _as_list(value):
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _config_json(obj):
    return json.dumps(keras.saving.serialize_keras_object(obj.get_config()), sort_keys=True)


def _assert_same_config(original, clone, what):
    if _config_json(original) != _config_json(clone):
        raise AssertionError(
            f"{what}: get_config differs after from_config.\n"
            f"original: {original.get_config()}\nclone:    {clone.get_config()}"
        )


def _save_and_reload(model):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return keras.saving.load_model(path)


def _strategy_scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _jit(function):
    """`function` compiled with XLA by the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    # No autograph, as under JAX: the objects compute with `keras.ops`.
    return tf.function(function, jit_compile=True, autograph=False)


def _fit_one_step(build_model, compile_kwargs, x, y, jit_compile, strategy=None, steps=1):
    """Build (seeded) under `strategy`, compile, fit `steps` full-batch steps."""
    keras.utils.set_random_seed(_SEED)
    batch_size = len(_as_list(x)[0]) if x is not None else None
    inputs = x if steps == 1 else _repeat(x, steps)
    targets = y if (steps == 1 or y is None) else _repeat(y, steps)
    # JAX reads the distribution when fit runs, so fit inside the scope too.
    with _strategy_scope(strategy):
        model = build_model()
        model.compile(jit_compile=jit_compile, **compile_kwargs())
        history = model.fit(
            inputs, targets, batch_size=batch_size, epochs=1, shuffle=False, verbose=0
        )
    return model, history.history["loss"][-1]


def _repeat(value, times):
    if isinstance(value, dict):
        return {key: _repeat(item, times) for key, item in value.items()}
    return np.concatenate([value] * times, axis=0)


def _sgd_mse():
    return {"optimizer": keras.optimizers.SGD(learning_rate=0.1), "loss": "mse"}


def _check_replicas(build_model, compile_kwargs, x, y, atol, random_in_training,
                    compare_non_trainable=True, steps=1):
    single, single_loss = _fit_one_step(build_model, compile_kwargs, x, y, False, steps=steps)
    replicated, replicated_loss = _fit_one_step(
        build_model, compile_kwargs, x, y, False, two_replica_strategy(), steps=steps
    )
    _assert_finite([single_loss, replicated_loss], "replicas: loss")
    _assert_finite(replicated.weights, "replicas: weights after a step")
    if random_in_training:
        return
    variables = "weights" if compare_non_trainable else "trainable_weights"
    # rtol: large weights differ in the last float32 bit when the devices'
    # partial sums are added in another order.
    _assert_close(
        getattr(replicated, variables),
        getattr(single, variables),
        atol,
        "replicas: weights after one step on two replicas vs one device",
        rtol=1e-6,
    )


def _check_jit(build_model, compile_kwargs, x, y, atol, random_in_training):
    eager, eager_loss = _fit_one_step(build_model, compile_kwargs, x, y, False)
    compiled, compiled_loss = _fit_one_step(build_model, compile_kwargs, x, y, True)
    _assert_finite([eager_loss, compiled_loss], "jit: loss")
    _assert_finite(compiled.weights, "jit: weights after a step")
    if not random_in_training:
        _assert_close(compiled.weights, eager.weights, atol,
                      "jit: weights after one step with jit_compile=True vs False")


# --------------------------------------------------------------------------- layers


@export("keras_efficient.testing.check_layer")
def check_layer(
    layer_cls,
    init_kwargs,
    input_data,
    *,
    checks=LAYER_CHECKS,
    random_in_training=False,
    atol=1e-5,
    bfloat16_atol=5e-2,
    compare_non_trainable_across_replicas=True,
):
    """Run the shared checks on a layer that maps one tensor to one tensor.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments, or a zero-argument callable returning
            them (use one when an argument is itself a layer, so each build gets
            its own).
        input_data: a numpy batch; its first dimension must be even (it is split
            over two replicas).
        checks: which of `LAYER_CHECKS` to run.
        random_in_training: the layer draws random numbers in training, so
            training results are only checked to be finite, and equality is
            checked in inference.
        atol: tolerance for float32 comparisons.
        bfloat16_atol: tolerance relative to the output's scale under bfloat16.
        compare_non_trainable_across_replicas: False for layers whose
            non-trainable state is per-replica by design (BatchNorm statistics).
    """
    _validate_checks(checks, LAYER_CHECKS)
    input_data = np.asarray(input_data)

    def build_model():
        inputs = keras.Input(shape=input_data.shape[1:], dtype=str(input_data.dtype))
        return keras.Model(inputs, layer_cls(**_fresh(init_kwargs))(inputs))

    def targets():
        keras.utils.set_random_seed(_SEED)
        return np.zeros(_numpy(build_model()(input_data[:1])).shape[1:], "float32")[None]

    for check in checks:
        if check == "config":
            layer = layer_cls(**_fresh(init_kwargs))
            layer(input_data)
            clone = layer_cls.from_config(layer.get_config())
            clone(input_data)
            _assert_same_config(layer, clone, f"{layer_cls.__name__} config")
            shapes = [tuple(w.shape) for w in layer.weights]
            clone_shapes = [tuple(w.shape) for w in clone.weights]
            if shapes != clone_shapes:
                raise AssertionError(f"config: the clone's weights {clone_shapes} differ from "
                                     f"the original's {shapes}: get_config drops an argument")
            clone.set_weights(layer.get_weights())
            _assert_close(clone(input_data, training=False), layer(input_data, training=False),
                          atol, "config: outputs of the clone")
        elif check == "saving":
            model = build_model()
            reloaded = _save_and_reload(model)
            _assert_close(reloaded.predict(input_data, verbose=0),
                          model.predict(input_data, verbose=0), 0.0,
                          "saving: outputs after .keras save and reload")
        elif check == "jit":
            y = np.repeat(targets(), len(input_data), axis=0)
            _check_jit(build_model, _sgd_mse, input_data, y, atol, random_in_training)
        elif check == "bfloat16":
            keras.utils.set_random_seed(_SEED)
            reference = build_model()
            with dtype_policy("mixed_bfloat16"):
                model = build_model()
            model.set_weights(reference.get_weights())
            layer = model.layers[-1]
            if layer.compute_dtype != "bfloat16":
                raise AssertionError(f"bfloat16: compute dtype is {layer.compute_dtype}")
            for variable in layer.weights:
                if variable.dtype != "float32":
                    raise AssertionError(f"bfloat16: variable {variable.path} is {variable.dtype}")
            expected = _numpy(reference(input_data, training=False))
            scale = max(1.0, float(np.max(np.abs(expected))))
            _assert_close(model(input_data, training=False), expected, bfloat16_atol * scale,
                          "bfloat16: inference output vs float32")
            with dtype_policy("mixed_bfloat16"):
                y = np.repeat(targets(), len(input_data), axis=0)
                _, loss = _fit_one_step(build_model, _sgd_mse, input_data, y, False)
            _assert_finite(loss, "bfloat16: training loss")
        elif check == "replicas":
            y = np.repeat(targets(), len(input_data), axis=0)
            _check_replicas(build_model, _sgd_mse, input_data, y, atol, random_in_training,
                            compare_non_trainable_across_replicas)


# --------------------------------------------------------------------------- losses


@keras.saving.register_keras_serializable(package="keras_efficient_testing")
class Offset(keras.layers.Layer):
    """Adds a trainable offset (zeros at start) so a loss has something to train."""

    def build(self, input_shape):
        self.offset = self.add_weight(shape=input_shape[1:], initializer="zeros")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.offset, inputs.dtype)


def _offset_model(y_pred):
    inputs = keras.Input(shape=y_pred.shape[1:])
    return keras.Model(inputs, Offset()(inputs))


@export("keras_efficient.testing.check_loss")
def check_loss(
    loss_cls,
    init_kwargs,
    y_true,
    y_pred,
    *,
    reference=None,
    checks=LOSS_CHECKS,
    atol=1e-5,
):
    """Run the shared checks on a loss called as `loss(y_true, y_pred)`.

    The training checks (`jit`, `replicas`) train an offset added to `y_pred`
    with SGD, so the loss's gradient and its reduction over replicas are what
    is compared.

    Args:
        loss_cls: the loss class.
        init_kwargs: constructor arguments (dict or zero-argument callable).
        y_true, y_pred: numpy batches; the batch size must be even.
        reference: optional `reference(y_true, y_pred) -> float`, an independent
            float64 implementation the loss must equal (to `atol`).
        checks: which of `LOSS_CHECKS` to run (plus `reference` when given).
        atol: tolerance for float32 comparisons.
    """
    _validate_checks(checks, LOSS_CHECKS)
    y_pred = np.asarray(y_pred, "float32")
    loss = loss_cls(**_fresh(init_kwargs))
    value = _numpy(loss(y_true, y_pred))
    _assert_finite(value, "loss value")
    if reference is not None:
        _assert_close(value, reference(y_true, np.asarray(y_pred, np.float64)), atol,
                      "reference: loss vs float64 reference")

    def build_model():
        return _offset_model(y_pred)

    def compile_kwargs():
        return {"optimizer": keras.optimizers.SGD(learning_rate=0.1),
                "loss": loss_cls(**_fresh(init_kwargs))}

    for check in checks:
        if check == "config":
            clone = loss_cls.from_config(loss.get_config())
            _assert_same_config(loss, clone, f"{loss_cls.__name__} config")
            _assert_close(clone(y_true, y_pred), value, atol, "config: value of the clone")
        elif check == "saving":
            model = build_model()
            model.compile(**compile_kwargs())
            reloaded = _save_and_reload(model)
            if not isinstance(reloaded.loss, loss_cls):
                raise AssertionError(f"saving: reloaded loss is {type(reloaded.loss)}")
            _assert_same_config(loss, reloaded.loss, "saving: reloaded loss config")
            _assert_close(reloaded.loss(y_true, y_pred), value, 0.0,
                          "saving: value of the reloaded loss")
        elif check == "jit":
            compiled = _jit(lambda t, p: loss(t, p))
            _assert_close(compiled(y_true, y_pred), value, atol, "jit: value under XLA")
            _check_jit(build_model, compile_kwargs, y_pred, y_true, atol, False)
        elif check == "bfloat16":
            rounded = keras.ops.cast(y_pred, "bfloat16")
            with dtype_policy("mixed_bfloat16"):
                mixed_loss = loss_cls(**_fresh(init_kwargs))
                result = mixed_loss(y_true, rounded)
            if keras.backend.standardize_dtype(result.dtype) != "float32":
                raise AssertionError(f"bfloat16: loss dtype is {result.dtype}, expected float32")
            # Computed in float32 from bfloat16 inputs: equal to the float32 loss
            # of the same (rounded) values.
            _assert_close(result, loss(y_true, keras.ops.cast(rounded, "float32")), atol,
                          "bfloat16: loss of bfloat16 inputs vs float32 of the same values")
        elif check == "replicas":
            _check_replicas(build_model, compile_kwargs, y_pred, y_true, atol, False)


# ------------------------------------------------------------------------ schedules


@export("keras_efficient.testing.check_schedule")
def check_schedule(
    schedule_cls,
    init_kwargs,
    steps,
    *,
    reference=None,
    checks=SCHEDULE_CHECKS,
    rtol=1e-6,
):
    """Run the shared checks on a `LearningRateSchedule`.

    Args:
        schedule_cls: the schedule class.
        init_kwargs: constructor arguments (dict or zero-argument callable).
        steps: integer steps to evaluate at; include ones where the rate changes.
        reference: optional `reference(step) -> float` closed form (float64).
        checks: which of `SCHEDULE_CHECKS` to run (plus `reference` when given).
        rtol: relative tolerance.
    """
    _validate_checks(checks, SCHEDULE_CHECKS)
    schedule = schedule_cls(**_fresh(init_kwargs))
    steps = [int(step) for step in steps]

    def values(a_schedule, function=None):
        function = function or a_schedule
        return np.array([_numpy(function(keras.ops.convert_to_tensor(step))) for step in steps],
                        np.float64)

    expected = values(schedule)
    _assert_finite(expected, "schedule values")
    if reference is not None:
        np.testing.assert_allclose(expected, [reference(step) for step in steps], rtol=rtol,
                                   atol=1e-12, err_msg="reference: schedule vs closed form")

    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")

    def build_model():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

    def compile_kwargs():
        return {"optimizer": keras.optimizers.SGD(schedule_cls(**_fresh(init_kwargs))),
                "loss": "mse"}

    for check in checks:
        if check == "config":
            clone = schedule_cls.from_config(schedule.get_config())
            _assert_same_config(schedule, clone, f"{schedule_cls.__name__} config")
            np.testing.assert_allclose(values(clone), expected, rtol=rtol,
                                       err_msg="config: values of the clone")
        elif check == "saving":
            model = build_model()
            model.compile(**compile_kwargs())
            reloaded = _save_and_reload(model)
            restored = keras.optimizers.schedules.deserialize(
                reloaded.optimizer.get_config()["learning_rate"])
            if not isinstance(restored, schedule_cls):
                raise AssertionError(f"saving: reloaded schedule is {type(restored)}")
            np.testing.assert_allclose(values(restored), expected, rtol=rtol,
                                       err_msg="saving: values of the reloaded schedule")
        elif check == "jit":
            compiled = _jit(lambda step: schedule(step))
            np.testing.assert_allclose(values(schedule, compiled), expected, rtol=rtol,
                                       err_msg="jit: values under XLA")
            _check_jit(build_model, compile_kwargs, x, y, 1e-6, False)
        elif check == "bfloat16":
            with dtype_policy("mixed_bfloat16"):
                mixed = schedule_cls(**_fresh(init_kwargs))
                result = mixed(keras.ops.convert_to_tensor(steps[-1]))
                np.testing.assert_allclose(values(mixed), expected, rtol=rtol,
                                           err_msg="bfloat16: values under mixed_bfloat16")
                _, loss = _fit_one_step(build_model, compile_kwargs, x, y, False, steps=2)
            if keras.backend.standardize_dtype(result.dtype) != "float32":
                raise AssertionError(f"bfloat16: schedule dtype is {result.dtype}")
            _assert_finite(loss, "bfloat16: training loss")
        elif check == "replicas":
            _check_replicas(build_model, compile_kwargs, x, y, 1e-6, False, steps=3)


# --------------------------------------------------------------------------- models


@export("keras_efficient.testing.check_model")
def check_model(
    make_model,
    compile_kwargs,
    x,
    y=None,
    *,
    checks=MODEL_CHECKS,
    random_in_training=False,
    atol=1e-5,
    compare_non_trainable_across_replicas=True,
):
    """Run the shared checks on a `keras.Model` (typically a subclass for a method).

    Args:
        make_model: zero-argument callable returning a fresh, uncompiled model.
            It is called after `keras.utils.set_random_seed`, so two calls give
            the same initial weights.
        compile_kwargs: zero-argument callable returning `compile` arguments
            (a fresh optimizer each time).
        x, y: one global batch (numpy or dict of numpy); batch size even.
        checks: which of `MODEL_CHECKS` to run.
        random_in_training: training draws random numbers (augmentation, ...):
            training results are only checked to be finite.
        atol: tolerance for float32 comparisons.
        compare_non_trainable_across_replicas: False where non-trainable state is
            per-replica by design (BatchNorm statistics).
    """
    _validate_checks(checks, MODEL_CHECKS)
    for check in checks:
        if check == "config":
            keras.utils.set_random_seed(_SEED)
            model = make_model()
            clone = type(model).from_config(model.get_config())
            _assert_same_config(model, clone, f"{type(model).__name__} config")
        elif check == "saving":
            model, _ = _fit_one_step(make_model, compile_kwargs, x, y, False)
            reloaded = _save_and_reload(model)
            if type(reloaded) is not type(model):
                raise AssertionError(f"saving: reloaded {type(reloaded)}, saved {type(model)}")
            _assert_close(reloaded.weights, model.weights, 0.0,
                          "saving: weights after .keras save and reload")
            _assert_close(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), 0.0,
                          "saving: predictions after .keras save and reload")
        elif check == "jit":
            _check_jit(make_model, compile_kwargs, x, y, atol, random_in_training)
        elif check == "bfloat16":
            with dtype_policy("mixed_bfloat16"):
                model, loss = _fit_one_step(make_model, compile_kwargs, x, y, False)
            _assert_finite(loss, "bfloat16: training loss")
            _assert_finite(model.weights, "bfloat16: weights after a step")
        elif check == "replicas":
            _check_replicas(make_model, compile_kwargs, x, y, atol, random_in_training,
                            compare_non_trainable_across_replicas)
