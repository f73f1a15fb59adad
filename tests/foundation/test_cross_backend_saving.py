"""A `.keras` file saved on one backend loads on the other with the same outputs:
TPU users (JAX) and GPU users (TensorFlow) share checkpoints."""

import json
import os
import subprocess
import sys

import keras
import numpy as np

import keras_efficient as ke

_OTHER_BACKEND = {"tensorflow": "jax", "jax": "tensorflow"}[keras.backend.backend()]

# Run with the other backend: load each file, predict on the saved input, and
# report the predictions and the classes of the restored loss and schedule.
_LOAD = """
import json, sys
import keras, numpy as np
import keras_efficient  # registers the package's classes
report = {}
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    x = dict(np.load(path + ".npz"))
    x = x["x"] if list(x) == ["x"] else x
    optimizer = model.optimizer.get_config()["learning_rate"] if model.optimizer else None
    report[path] = {"backend": keras.backend.backend(),
                    "outputs": np.asarray(model.predict(x, verbose=0)).tolist(),
                    "model": type(model).__name__,
                    "loss": type(model.loss).__name__ if model.optimizer else None,
                    "schedule": optimizer.get("class_name") if isinstance(optimizer, dict)
                    else None}
print("REPORT" + json.dumps(report))
"""


def _sam():
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="tanh")(keras.layers.Concatenate()([a, b]))
    model = ke.models.SharpnessAwareMinimization(
        keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(hidden)), rho=0.1,
        interval=2, looksam_alpha=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(4, 3)).astype("float32"),
         "b": rng.normal(size=(4, 2)).astype("float32")}
    model.fit(x, rng.normal(size=(4, 2)).astype("float32"), verbose=0)
    return model, x


def _regularized_cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = ke.layers.DropBlock2D(rate=0.1, block_size=3, seed=1)(x)
    branch = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same"),
                               keras.layers.BatchNormalization()])
    x = ke.layers.StochasticDepth(branch, survival_probability=0.8, seed=2)(x)
    x = ke.layers.ProjectionHead((8,), 3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, x)
    schedule = ke.schedules.WarmUp(keras.optimizers.schedules.CosineDecay(0.1, 20),
                                   warmup_steps=5)
    model.compile(optimizer=keras.optimizers.SGD(schedule),
                  loss=ke.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                               label_smoothing=0.1))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 8, 8, 1)).astype("float32")
    model.fit(x, rng.integers(0, 3, size=(4,)), verbose=0)
    return model, x


def test_keras_file__saved_on_one_backend_loads_on_the_other(tmp_path):
    keras.utils.set_random_seed(0)
    models = {"sam": _sam(), "cnn": _regularized_cnn()}
    paths = []
    for name, (model, x) in models.items():
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.savez(path + ".npz", **(x if isinstance(x, dict) else {"x": x}))
        paths.append(path)
    environment = dict(os.environ, KERAS_BACKEND=_OTHER_BACKEND)
    result = subprocess.run([sys.executable, "-c", _LOAD, *paths], env=environment,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    for (name, (model, x)), path in zip(models.items(), paths):
        loaded = report[path]
        assert loaded["backend"] == _OTHER_BACKEND
        assert loaded["model"] == type(model).__name__
        np.testing.assert_allclose(loaded["outputs"], model.predict(x, verbose=0), atol=1e-5,
                                   err_msg=name)
    assert report[paths[1]]["loss"] == "SparseCategoricalCrossentropy"
    assert report[paths[1]]["schedule"] == "WarmUp"
