import keras
import numpy as np
import pytest

from keras_efficient import federated

pytest.importorskip("flwr")
from keras_efficient.federated import flower


def test_flower__run_simulation_equals_in_process_fedavg(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    monkeypatch.setenv("PYTHONPATH", "")  # Flower's Ray backend rewrites it

    def model_fn():  # local: pickled by value into the Ray workers
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n))
               for n in (5, 9)]
    kwargs = {"local_epochs": 2, "batch_size": 4, "seed": 1,
              "server_optimizer": keras.optimizers.SGD(1.0, momentum=0.5)}
    keras.utils.set_random_seed(0)
    in_process = federated.FedAvg(model_fn, keras.optimizers.SGD(0.1), **kwargs)
    initial = in_process.get_weights()
    in_process.fit(clients, rounds=2)

    on_flower = federated.FedAvg(model_fn, keras.optimizers.SGD(0.1), **kwargs)
    on_flower.set_weights(initial)
    result = flower.run_simulation(on_flower, clients, rounds=2)
    assert sorted(result.train_metrics_clientapp) == [1, 2]
    changed = False
    for a, b, start in zip(in_process.get_weights(), on_flower.get_weights(), initial):
        np.testing.assert_allclose(a, b, atol=1e-6)
        changed |= not np.allclose(a, start)
    assert changed
