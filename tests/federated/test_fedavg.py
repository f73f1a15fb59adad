import keras
import numpy as np
import pytest

from keras_efficient import federated
from keras_efficient.federated.client import _ProximalModel
from keras_efficient.federated.client import get_weights
from keras_efficient.federated.client import set_weights
from keras_efficient.federated.parallel import _devices

SIZES = (5, 8, 11)  # unequal, so the count weighting and the padding matter


def _classifier():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _regressor():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    return model


def _clients(sizes=SIZES, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, classes, n))
        for n in sizes
    ]


def _regression_clients(sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 1)).astype("float32"))
        for n in sizes
    ]


@pytest.mark.parametrize("algorithm", ["fedavg", "fedsgd"])
def test_fedavg__full_batch_one_epoch_equals_centralized_gradient_descent(algorithm):
    clients = _clients()
    keras.utils.set_random_seed(1)
    if algorithm == "fedavg":
        fed = federated.FedAvg(_classifier, keras.optimizers.SGD(0.5), local_epochs=1,
                               batch_size=None, clients_per_round=1.0)
    else:
        fed = federated.FedSGD(_classifier, keras.optimizers.SGD(0.5))
    initial = fed.get_weights()
    fed.fit(clients, rounds=3)

    # Reference: Keras's own full-batch gradient descent on the union of the data.
    central = _classifier()
    set_weights(central, initial)
    central.compile(optimizer=keras.optimizers.SGD(0.5), loss=central.loss)
    x = np.concatenate([c[0] for c in clients])
    y = np.concatenate([c[1] for c in clients])
    central.fit(x, y, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    for got, want in zip(fed.get_weights(), get_weights(central)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_client_update__fedprox_two_steps_match_float64_formula():
    (x, y), = _regression_clients(sizes=(6,))
    mu, lr = 0.7, 0.1
    update = federated.ClientUpdate(_regressor, keras.optimizers.SGD(lr), local_epochs=2,
                                    batch_size=None, proximal_mu=mu)
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 1)).astype("float32"), np.array([0.3], "float32")]
    got = update(start, x, y, np.random.default_rng(0), pad_to=9)

    kernel, bias = (w.astype("float64") for w in start)
    x64, y64 = x.astype("float64"), y.astype("float64")
    for _ in range(2):
        residual = x64 @ kernel + bias - y64
        grad_kernel = 2 * x64.T @ residual / len(x) + mu * (kernel - start[0])
        grad_bias = 2 * residual.sum(0) / len(x) + mu * (bias - start[1])
        kernel, bias = kernel - lr * grad_kernel, bias - lr * grad_bias
    np.testing.assert_allclose(got[0], kernel, atol=1e-5)
    np.testing.assert_allclose(got[1], bias, atol=1e-5)


def test_weighted_average__equals_float64_numpy():
    rng = np.random.default_rng(0)
    updates = [[rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=3).astype("float32")]
               for _ in range(3)]
    counts = [5, 8, 11]
    got = federated.weighted_average(updates, counts)
    for i in range(2):
        want = sum(n * u[i].astype("float64") for n, u in zip(counts, updates)) / sum(counts)
        assert got[i].dtype == np.float32
        np.testing.assert_allclose(got[i], want, rtol=1e-6)


def _server_round(server_optimizer, rounds=1, **kwargs):
    keras.utils.set_random_seed(2)
    fed = federated.FedAvg(_classifier, "sgd", server_optimizer=server_optimizer, **kwargs)
    rng = np.random.default_rng(5)
    start = [w.astype("float64") for w in fed.get_weights()]
    deltas = []
    for _ in range(rounds):
        current = fed.get_weights()
        updates = [[w + rng.normal(size=w.shape).astype("float32") for w in current]
                   for _ in range(3)]
        fed.aggregate(updates, [5, 8, 11], rng=np.random.default_rng(0))
        average = federated.weighted_average(updates, [5, 8, 11])
        deltas.append([c.astype("float64") - a for c, a in zip(current, average)])
    return start, deltas, fed.get_weights()


def test_fedavg__server_sgd_one_is_the_weighted_average():
    start, (delta,), got = _server_round(keras.optimizers.SGD(1.0))
    for s, d, g in zip(start, delta, got):
        np.testing.assert_allclose(g, s - d, atol=1e-5)


def test_fedavg__server_momentum_two_rounds_closed_form():
    start, deltas, got = _server_round(keras.optimizers.SGD(0.7, momentum=0.9), rounds=2)
    for i, s in enumerate(start):
        velocity = -0.7 * deltas[0][i]
        velocity = 0.9 * velocity - 0.7 * deltas[1][i]
        want = s - 0.7 * deltas[0][i] + velocity
        np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_fedavg__server_adam_one_round_closed_form():
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-3
    start, (delta,), got = _server_round(
        keras.optimizers.Adam(lr, beta_1=b1, beta_2=b2, epsilon=eps))
    for s, d, g in zip(start, delta, got):
        m, v = (1 - b1) * d, (1 - b2) * d**2
        want = s - lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(g, want, atol=1e-5)


def test_fedavg__dp_clipping_closed_form_and_noise_scale():
    keras.utils.set_random_seed(2)
    fed = federated.FedAvg(_classifier, "sgd", clipping_norm=0.5)
    current = fed.get_weights()
    rng = np.random.default_rng(1)
    updates = [[w + rng.normal(size=w.shape).astype("float32") for w in current]
               for _ in range(4)]
    fed.aggregate(updates, [1, 2, 3, 100])
    want = []
    for i, c in enumerate(current):
        clipped = []
        for u in updates:
            d = [a.astype("float64") - b for a, b in zip(u, current)]
            norm = np.sqrt(sum(np.sum(x**2) for x in d))
            clipped.append(d[i] * min(1.0, 0.5 / norm))
        want.append(c + np.mean(clipped, axis=0))  # equal weights, not counts
    for g, w in zip(fed.get_weights(), want):
        np.testing.assert_allclose(g, w, atol=1e-6)

    def big():
        model = keras.Sequential([keras.Input((50,)), keras.layers.Dense(40)])
        model.compile(loss="mse")
        return model

    noisy = federated.FedAvg(big, "sgd", clipping_norm=1.0, noise_multiplier=2.0)
    start = noisy.get_weights()
    stddev = noisy.aggregate([start] * 4, [1] * 4, rng=np.random.default_rng(0))
    assert stddev == pytest.approx(2.0 * 1.0 / 4)
    noise = noisy.get_weights()[0] - start[0]
    assert np.std(noise) == pytest.approx(0.5, rel=0.1)


def test_fedavg__bad_clients_are_dropped_with_a_warning():
    clients = _clients()
    nan_client = (np.full((4, 4), np.nan, "float32"), np.zeros(4, "int64"))
    wrong_shape = (np.zeros((4, 7), "float32"), np.zeros(4, "int64"))
    keras.utils.set_random_seed(3)
    fed = federated.FedAvg(_classifier, keras.optimizers.SGD(0.1), batch_size=4)
    initial = fed.get_weights()
    with pytest.warns(UserWarning) as record:
        history = fed.fit(clients + [nan_client, wrong_shape], rounds=1)
    messages = " ".join(str(w.message) for w in record)
    assert "Client 3 returned non-finite weights" in messages
    assert "Client 4 failed" in messages
    assert history.clients == [[0, 1, 2]]

    clean = federated.FedAvg(_classifier, keras.optimizers.SGD(0.1), batch_size=4)
    clean.set_weights(initial)
    clean.fit(clients, rounds=1)
    for a, b in zip(fed.get_weights(), clean.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fedavg__history_sampling_bytes_and_target():
    clients = _clients(sizes=(6,) * 10)
    x_test, y_test = _clients(sizes=(30,), seed=9)[0]
    keras.utils.set_random_seed(4)
    fed = federated.FedAvg(_classifier, keras.optimizers.SGD(0.3), local_epochs=2,
                           batch_size=3, clients_per_round=0.3, seed=7)
    history = fed.fit(clients, rounds=3, test_data=(x_test, y_test))
    assert [len(c) for c in history.clients] == [3, 3, 3]
    assert history.clients[0] == fed.sample_clients(1, 10).tolist()
    assert history.clients[0] != history.clients[1] or history.clients[1] != history.clients[2]
    size = sum(w.nbytes for w in fed.get_weights())
    assert history.bytes_up == [3 * size] * 3 and history.bytes_down == [3 * size] * 3
    logs = fed.model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert history.accuracy[-1] == pytest.approx(logs["accuracy"])
    assert history.loss[-1] == pytest.approx(logs["loss"], rel=1e-5)
    best = max(history.accuracy)
    assert history.rounds_to_target(best) == history.accuracy.index(best) + 1
    assert history.rounds_to_target(1.01) is None
    assert history.bytes_to_round(2) == 4 * 3 * size
    stopped = fed.fit(clients, rounds=5, test_data=(x_test, y_test), target_accuracy=0.0)
    assert stopped.rounds == 1 and fed.server_round == 4


def test_fedavg__same_seed_same_weights_and_client_update_traced_once(monkeypatch):
    traces = []
    compute_loss = _ProximalModel.compute_loss

    def counting_compute_loss(self, *args, **kwargs):
        traces.append(1)  # Python runs only while the train step is traced
        return compute_loss(self, *args, **kwargs)

    monkeypatch.setattr(_ProximalModel, "compute_loss", counting_compute_loss)
    clients = _clients()
    results = []
    for _ in range(2):
        keras.utils.set_random_seed(5)
        fed = federated.FedAvg(_classifier, keras.optimizers.Adam(0.01), local_epochs=2,
                               batch_size=4)
        fed.fit(clients, rounds=1)
        traced = len(traces)
        fed.fit(clients, rounds=2)  # clients of 5, 8 and 11 examples: short batches padded
        assert len(traces) == traced  # no retracing per client or round
        results.append(fed.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_fedavg__config_round_trip():
    fed = federated.FedAvg(_classifier, keras.optimizers.SGD(0.2), local_epochs=5,
                           batch_size=10, clients_per_round=0.1,
                           server_optimizer=keras.optimizers.SGD(1.0, momentum=0.9),
                           proximal_mu=0.01, seed=3)
    for algorithm in (fed, federated.FedSGD(_classifier, "sgd", clients_per_round=3)):
        config = algorithm.get_config()
        again = type(algorithm).from_config(config, _classifier).get_config()
        for name in ("client_optimizer", "server_optimizer"):
            # Keras may spell a built-in's class name in lower case; compare its config.
            assert again.pop(name)["config"] == config.pop(name)["config"]
        assert again == config


def test_fedavg__bad_input():
    for value in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match="clients_per_round"):
            federated.FedAvg(_classifier, "sgd", clients_per_round=value)
    with pytest.raises(ValueError, match="local_epochs"):
        federated.FedAvg(_classifier, "sgd", local_epochs=0)
    with pytest.raises(TypeError, match="parallel_clients"):
        federated.FedAvg(_classifier, "sgd", parallel_clients="no")
    with pytest.raises(ValueError, match="noise_multiplier` needs `clipping_norm"):
        federated.FedAvg(_classifier, "sgd", noise_multiplier=1.0)

    def uncompiled():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    with pytest.raises(ValueError, match="compiled"):
        federated.FedAvg(uncompiled, "sgd")
    fed = federated.FedAvg(_classifier, "sgd", clients_per_round=5)
    with pytest.raises(ValueError, match="clients_per_round"):
        fed.fit(_clients(), rounds=1)
    with pytest.raises(ValueError, match="Client 1 has no data"):
        fed.fit([_clients()[0], (np.zeros((0, 4)), np.zeros(0))], rounds=1)
    with pytest.raises(ValueError, match="client_data"):
        fed.fit([], rounds=1)
    with pytest.raises(ValueError, match="needs `test_data`"):
        fed.fit(_clients(), rounds=1, target_accuracy=0.9)
    with pytest.raises(ValueError, match="shape"):
        fed.set_weights([np.zeros((5, 3)), np.zeros(3)])
    wrong = [[np.zeros((5, 3), "float32"), np.zeros(3, "float32")]]
    with pytest.raises(ValueError, match="same architecture"):
        fed.aggregate(wrong, [1])


@pytest.mark.parametrize("batch_size", [4, None])
def test_fedavg__parallel_clients_round_equals_sequential_round(batch_size):
    assert len(_devices()) == 2  # conftest's two CPU devices
    # 3 of 4 clients per round: 3 clients padded to 2 per device; unequal sizes
    # give masked steps; momentum and FedProx carry per-client state.
    clients = _clients(SIZES + (6,))
    kwargs = {"local_epochs": 2, "batch_size": batch_size, "clients_per_round": 3,
              "proximal_mu": 0.1, "seed": 2}
    weights = []
    for parallel in (False, True):
        keras.utils.set_random_seed(0)
        fed = federated.FedAvg(_classifier, keras.optimizers.SGD(0.1, momentum=0.9),
                               parallel_clients=parallel, **kwargs)
        fed.fit(clients, rounds=2)
        weights.append(fed.get_weights())
    for sequential, parallel in zip(*weights):
        np.testing.assert_allclose(parallel, sequential, rtol=1e-5, atol=1e-6)


def test_fedavg__parallel_clients_bad_model():
    def normalized():
        model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
                                  keras.layers.Dense(3)])
        model.compile(loss="mse")
        return model

    def random():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5),
                                  keras.layers.Dense(3)])
        model.compile(loss="mse")
        return model

    with pytest.raises(ValueError, match="non-trainable weights"):
        federated.FedAvg(normalized, "sgd", parallel_clients=True)
    with pytest.raises(ValueError, match="random layers"):
        federated.FedAvg(random, "sgd", parallel_clients=True)
