import keras
import numpy as np
import pytest

from keras_efficient import federated


def _regressor():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    return model


def _nodes(count, size=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, 3)).astype("float32"),
             rng.normal(size=(size, 2)).astype("float32")) for _ in range(count)]


@pytest.mark.parametrize(
    "adjacency, degree",
    [
        (federated.ring_graph(7), 2),
        (federated.torus_graph(3, 4), 4),
        (federated.complete_graph(5), 4),
        (federated.random_regular_graph(10, 3, seed=0), 3),
    ],
)
def test_graphs__regular_symmetric_and_mh_doubly_stochastic(adjacency, degree):
    assert np.array_equal(adjacency, adjacency.T)
    assert not adjacency.diagonal().any()
    assert (adjacency.sum(axis=1) == degree).all()
    mixing = federated.metropolis_hastings_weights(adjacency)
    np.testing.assert_allclose(mixing.sum(axis=0), 1.0)
    np.testing.assert_allclose(mixing.sum(axis=1), 1.0)
    # On a regular graph MH gives 1 / (degree + 1) to self and to each neighbour.
    np.testing.assert_allclose(mixing[adjacency], 1.0 / (degree + 1))


def test_spectral_gap__matches_ring_eigenvalues():
    n = 8
    mixing = federated.metropolis_hastings_weights(federated.ring_graph(n))
    # Circulant (1/3, 1/3, 1/3): eigenvalues 1/3 + 2/3 cos(2πk/n).
    eigenvalues = 1 / 3 + 2 / 3 * np.cos(2 * np.pi * np.arange(1, n) / n)
    assert federated.spectral_gap(mixing) == pytest.approx(1 - np.abs(eigenvalues).max())
    complete = federated.metropolis_hastings_weights(federated.complete_graph(n))
    assert federated.spectral_gap(complete) == pytest.approx(1.0)


@pytest.mark.parametrize("topology", ["ring", "torus"])
def test_decentralized_sgd__mixing_only_converges_to_average_at_spectral_rate(topology):
    nodes = _nodes(12)
    dsgd = federated.DecentralizedSGD(_regressor, "sgd", topology=topology, local_epochs=0)
    rng = np.random.default_rng(1)
    shapes = [(3, 2), (2,)]
    initial = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(12)]
    dsgd.set_node_weights(initial)
    exact_average = [np.mean([w[i].astype("float64") for w in initial], axis=0) for i in range(2)]
    d0 = federated.consensus_distance(initial)
    history = dsgd.fit(nodes, rounds=15)
    distances = np.array(history.extra["consensus_distance"])

    rate = 1 - federated.spectral_gap(dsgd.mixing_matrix(12))
    flat = lambda ws: np.stack([np.concatenate([w.ravel() for w in n]) for n in ws])
    # Frobenius deviation bound ||X_t - X̄|| <= rate^t ||X_0 - X̄||, and the rate is attained.
    deviation = np.linalg.norm(flat(dsgd.node_weights) - flat([exact_average] * 12))
    start = np.linalg.norm(flat(initial) - flat([exact_average] * 12))
    assert deviation <= rate**15 * start * (1 + 1e-6) + 1e-6
    assert distances[-1] / distances[-2] == pytest.approx(rate, rel=2e-2)
    assert distances[0] < d0
    for got, want in zip(dsgd.get_weights(), exact_average):
        np.testing.assert_allclose(got, want, atol=1e-6)  # mixing keeps the average
    assert history.bytes_up[0] == 12 * (2 if topology == "ring" else 4) * (8 * 4)


def test_decentralized_sgd__complete_graph_equals_fedavg_with_equal_clients():
    nodes = _nodes(4)
    keras.utils.set_random_seed(0)
    dsgd = federated.DecentralizedSGD(_regressor, keras.optimizers.SGD(0.1),
                                      topology="complete", local_epochs=2, batch_size=4, seed=3)
    initial = federated.weighted_average([dsgd.model.get_weights()], [1])
    dsgd.fit(nodes, rounds=2)
    fed = federated.FedAvg(_regressor, keras.optimizers.SGD(0.1), local_epochs=2,
                           batch_size=4, seed=3)
    fed.set_weights(initial)
    fed.fit(nodes, rounds=2)
    for a, b in zip(dsgd.get_weights(), fed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert federated.consensus_distance(dsgd.node_weights) < 1e-6


def test_decentralized_sgd__bad_input():
    with pytest.raises(ValueError, match="doubly stochastic"):
        federated.DecentralizedSGD(_regressor, "sgd", mixing=np.array([[0.5, 0.5], [0.7, 0.3]]))
    with pytest.raises(ValueError, match="doubly stochastic"):
        federated.check_mixing_matrix(np.array([[1.5, -0.5], [-0.5, 1.5]]))
    with pytest.raises(ValueError, match="symmetric"):
        federated.DecentralizedSGD(_regressor, "sgd", topology=np.triu(np.ones((3, 3)), 1))
    with pytest.raises(ValueError, match="topology"):
        federated.DecentralizedSGD(_regressor, "sgd", topology="star")
    with pytest.raises(ValueError, match="must be even"):
        federated.random_regular_graph(5, 3)
    with pytest.raises(ValueError, match="torus"):
        federated.DecentralizedSGD(_regressor, "sgd", topology="torus").fit(_nodes(7), 1)
    disconnected = np.kron(np.eye(2), 1 - np.eye(2))
    with pytest.raises(ValueError, match="not connected"):
        federated.DecentralizedSGD(_regressor, "sgd", topology=disconnected).fit(_nodes(4), 1)
    with pytest.raises(ValueError, match="5 nodes"):
        federated.DecentralizedSGD(_regressor, "sgd", topology=federated.ring_graph(5)).fit(
            _nodes(4), 1)
    with pytest.raises(ValueError, match="local_epochs"):
        federated.DecentralizedSGD(_regressor, "sgd", local_epochs=-1)


def test_decentralized_sgd__config_round_trip():
    adjacency = federated.random_regular_graph(6, 3, seed=0)
    mixing = federated.metropolis_hastings_weights(adjacency)
    for kwargs in ({"topology": "torus", "local_epochs": 0},
                   {"topology": adjacency, "mixing": mixing, "batch_size": 4, "seed": 3}):
        dsgd = federated.DecentralizedSGD(_regressor, keras.optimizers.SGD(0.2), **kwargs)
        config = dsgd.get_config()
        again = federated.DecentralizedSGD.from_config(config, _regressor)
        again_config = again.get_config()
        # Keras may spell a built-in's class name in lower case; compare its config.
        assert again_config.pop("client_optimizer")["config"] == config.pop(
            "client_optimizer")["config"]
        assert again_config == config
        if "mixing" in kwargs:
            np.testing.assert_array_equal(again.mixing_matrix(6), mixing)
