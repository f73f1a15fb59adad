"""Decentralized training: local steps, then averaging with graph neighbours."""

import time

import numpy as np

from keras_efficient.federated.client import ClientUpdate
from keras_efficient.federated.client import client_rng
from keras_efficient.federated.client import get_weights
from keras_efficient.federated.client import set_weights
from keras_efficient.federated.fedavg import check_client_data
from keras_efficient.federated.fedavg import check_fit_arguments
from keras_efficient.federated.fedavg import check_same_shapes
from keras_efficient.federated.fedavg import reached
from keras_efficient.federated.fedavg import record_evaluation
from keras_efficient.federated.history import FederatedHistory
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

#: The most nodes of a graph: its dense float64 mixing matrix then takes at most 2 GiB.
MAX_NODES = 2**14


def _empty(num_nodes):
    validate_size("num_nodes", num_nodes, 2, MAX_NODES)
    return np.zeros((num_nodes, num_nodes), dtype=bool)


@export("keras_efficient.federated.ring_graph")
def ring_graph(num_nodes):
    """Adjacency of a ring: node i talks to i - 1 and i + 1 (mod n)."""
    adjacency = _empty(num_nodes)
    nodes = np.arange(num_nodes)
    adjacency[nodes, (nodes + 1) % num_nodes] = True
    return adjacency | adjacency.T


@export("keras_efficient.federated.torus_graph")
def torus_graph(rows, cols):
    """Adjacency of a 2-D torus: a `rows x cols` grid with wrap-around edges."""
    validate_size("rows", rows, 2, MAX_NODES // 2)
    validate_size("cols", cols, 2, MAX_NODES // rows)
    adjacency = _empty(rows * cols)
    grid = np.arange(rows * cols).reshape(rows, cols)
    adjacency[grid.ravel(), np.roll(grid, 1, axis=0).ravel()] = True
    adjacency[grid.ravel(), np.roll(grid, 1, axis=1).ravel()] = True
    adjacency |= adjacency.T
    np.fill_diagonal(adjacency, False)  # a 2-wide dimension wraps onto itself
    return adjacency


@export("keras_efficient.federated.complete_graph")
def complete_graph(num_nodes):
    """Adjacency of the complete graph (every node talks to every other)."""
    adjacency = ~_empty(num_nodes)
    np.fill_diagonal(adjacency, False)
    return adjacency


@export("keras_efficient.federated.random_regular_graph")
def random_regular_graph(num_nodes, degree, seed=None, max_attempts=1000):
    """Adjacency of a random `degree`-regular simple graph (pairing model).

    Args:
        num_nodes: number of nodes; `num_nodes * degree` must be even.
        degree: neighbours per node, in [1, num_nodes).
        seed: integer seed.
        max_attempts: pairings tried before giving up.
    """
    adjacency = _empty(num_nodes)
    validate_number("degree", degree, 1, num_nodes - 1, integer=True)
    if num_nodes * degree % 2:
        raise ValueError(
            f"A {degree}-regular graph on {num_nodes} nodes does not exist: "
            "num_nodes * degree must be even."
        )
    validate_size("max_attempts", max_attempts)
    rng = np.random.default_rng(validate_seed("seed", seed))
    for _ in range(max_attempts):
        stubs = rng.permutation(np.repeat(np.arange(num_nodes), degree)).reshape(-1, 2)
        pairs = np.sort(stubs, axis=1)
        if np.all(pairs[:, 0] != pairs[:, 1]) and len(np.unique(pairs, axis=0)) == len(pairs):
            adjacency[pairs[:, 0], pairs[:, 1]] = True
            return adjacency | adjacency.T
    raise ValueError(
        f"No simple {degree}-regular graph on {num_nodes} nodes found in "
        f"{max_attempts} attempts; use a smaller degree."
    )


def _check_adjacency(adjacency, name="adjacency"):
    adjacency = np.asarray(adjacency)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or len(adjacency) < 2:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a square "
            f"matrix of at least 2 nodes. Received: shape {adjacency.shape}"
        )
    adjacency = adjacency != 0
    if not np.array_equal(adjacency, adjacency.T):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a symmetric "
            "matrix (an undirected graph)."
        )
    np.fill_diagonal(adjacency, False)
    return adjacency


@export("keras_efficient.federated.metropolis_hastings_weights")
def metropolis_hastings_weights(adjacency):
    """Metropolis–Hastings mixing matrix of an undirected graph.

    `W[i, j] = 1 / (1 + max(deg i, deg j))` for every edge, and `W[i, i]` takes
    the rest of row i: symmetric and doubly stochastic on any graph, using only
    what neighbours know (Xiao & Boyd 2004).
    """
    adjacency = _check_adjacency(adjacency)
    degree = adjacency.sum(axis=1)
    weights = np.where(adjacency, 1.0 / (1.0 + np.maximum.outer(degree, degree)), 0.0)
    np.fill_diagonal(weights, 1.0 - weights.sum(axis=1))
    return weights


@export("keras_efficient.federated.check_mixing_matrix")
def check_mixing_matrix(mixing, atol=1e-8):
    """Return `mixing` as float64 if it is non-negative and doubly stochastic, else raise."""
    validate_number("atol", atol, 0)
    mixing = np.asarray(mixing, dtype="float64")
    if mixing.ndim != 2 or mixing.shape[0] != mixing.shape[1]:
        raise ValueError(
            "Invalid value received for argument `mixing`. Expected a square matrix. "
            f"Received: shape {mixing.shape}"
        )
    rows, cols = mixing.sum(axis=1), mixing.sum(axis=0)
    if (mixing < -atol).any() or not (np.allclose(rows, 1, atol=atol)
                                      and np.allclose(cols, 1, atol=atol)):
        raise ValueError(
            "Invalid value received for argument `mixing`. Expected a non-negative, "
            "doubly stochastic matrix (every row and column sums to 1), so that "
            "gossip preserves the average. Received: row sums in "
            f"[{rows.min():.4g}, {rows.max():.4g}], column sums in "
            f"[{cols.min():.4g}, {cols.max():.4g}], min entry {mixing.min():.4g}. "
            "`metropolis_hastings_weights(adjacency)` builds one for any graph."
        )
    return mixing


@export("keras_efficient.federated.spectral_gap")
def spectral_gap(mixing):
    """`1 - ||W - 11ᵀ/n||₂`: the per-step contraction of the distance to consensus.

    For a symmetric W this is one minus the second-largest eigenvalue modulus;
    after t mixing steps the deviation from the average is at most
    `(1 - gap)^t` times the initial one.
    """
    mixing = check_mixing_matrix(mixing)
    n = len(mixing)
    return float(1.0 - np.linalg.norm(mixing - np.full((n, n), 1.0 / n), ord=2))


@export("keras_efficient.federated.consensus_distance")
def consensus_distance(node_weights):
    """Mean over nodes of `||w_i - w̄||` (all of a node's weights flattened)."""
    flat = np.stack([np.concatenate([np.ravel(w) for w in weights]).astype("float64")
                     for weights in node_weights])
    return float(np.mean(np.linalg.norm(flat - flat.mean(axis=0), axis=1)))


@export("keras_efficient.federated.mix")
def mix(node_weights, mixing):
    """One gossip step: node i's weights become `sum_j W[i, j] * w_j` (float64)."""
    mixed = []
    for i in range(len(node_weights[0])):
        stacked = np.stack([np.asarray(w[i], dtype="float64") for w in node_weights])
        shape = stacked.shape
        mixed.append((mixing @ stacked.reshape(len(stacked), -1)).reshape(shape))
    dtypes = [np.asarray(w).dtype for w in node_weights[0]]
    return [[mixed[i][node].astype(dtypes[i]) for i in range(len(mixed))]
            for node in range(len(node_weights))]


_TOPOLOGIES = ("ring", "torus", "complete")


def _square_torus(num_nodes):
    rows = max(r for r in range(1, int(np.sqrt(num_nodes)) + 1) if num_nodes % r == 0)
    if rows < 2:
        raise ValueError(
            f"A 2-D torus needs a number of nodes with a factor >= 2 on both sides; "
            f"{num_nodes} has none. Pass `torus_graph(rows, cols)` instead."
        )
    return torus_graph(rows, num_nodes // rows)


@export("keras_efficient.federated.DecentralizedSGD")
class DecentralizedSGD:
    """Decentralized SGD (D-PSGD): local training, then averaging with neighbours.

    No server: node i holds its own weights; each round it trains them on its
    data (`local_epochs` epochs of minibatches of `batch_size`, as a FedAvg
    client does), then replaces them by `sum_j W[i, j] w_j` over its graph
    neighbours (Lian et al. 2017). W must be doubly stochastic so that mixing
    keeps the nodes' average; Metropolis–Hastings weights of the graph are the
    default. `local_epochs=0` is pure gossip averaging. The history records the
    averaged model's test metrics and the consensus distance
    (`extra["consensus_distance"]`, mean `||w_i - w̄||` after mixing).

    Args:
        model_fn: zero-argument function returning a compiled, built Keras model.
        client_optimizer: each node's Keras optimizer (reset every round).
        topology: "ring", "torus" (the squarest grid of the number of nodes),
            "complete", or a symmetric adjacency matrix (e.g. from
            `random_regular_graph`).
        mixing: optional doubly stochastic mixing matrix; overrides the
            Metropolis–Hastings weights of `topology`.
        local_epochs: local passes per round; 0 for mixing only.
        batch_size: local minibatch size, or None for full batch.
        seed: integer seed of the local shuffling.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> def model_fn():
    ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    ...     model.compile(loss="mse")
    ...     return model
    >>> rng = np.random.default_rng(0)
    >>> nodes = [(rng.normal(size=(8, 4)), rng.normal(size=(8, 1))) for _ in range(6)]
    >>> dsgd = ke.federated.DecentralizedSGD(model_fn, keras.optimizers.SGD(0.1), topology="ring")
    >>> history = dsgd.fit(nodes, rounds=2)
    >>> len(history.extra["consensus_distance"])
    2

    Reference:
    - [Lian et al., 2017](https://arxiv.org/abs/1705.09056)
    - [Xiao & Boyd, 2004](https://doi.org/10.1016/j.sysconle.2004.02.022)
    """

    def __init__(self, model_fn, client_optimizer, topology="ring", mixing=None,
                 local_epochs=1, batch_size=None, seed=0):
        if isinstance(topology, str):
            validate_choice("topology", topology, _TOPOLOGIES)
        else:
            topology = _check_adjacency(topology, "topology")
        self.topology = topology
        self.mixing = None if mixing is None else check_mixing_matrix(mixing)
        self.local_epochs = validate_size("local_epochs", local_epochs, 0)
        self.seed = validate_seed("seed", seed, allow_none=False)
        self.client_update = ClientUpdate(
            model_fn, client_optimizer, max(local_epochs, 1), batch_size)
        self.node_weights = None
        self.server_round = 0

    @property
    def model(self):
        """The Keras model (holds the nodes' average after `fit`)."""
        return self.client_update.model

    def mixing_matrix(self, num_nodes):
        """The mixing matrix used for `num_nodes` nodes (checked)."""
        if self.mixing is not None:
            mixing = self.mixing
        elif isinstance(self.topology, str):
            adjacency = {"ring": ring_graph, "complete": complete_graph,
                         "torus": _square_torus}[self.topology](num_nodes)
            mixing = metropolis_hastings_weights(adjacency)
        else:
            mixing = metropolis_hastings_weights(self.topology)
        if len(mixing) != num_nodes:
            raise ValueError(
                f"The mixing matrix is for {len(mixing)} nodes but {num_nodes} nodes' "
                "data were given."
            )
        if spectral_gap(mixing) <= 1e-12:
            raise ValueError(
                "The graph is not connected (spectral gap 0): the nodes cannot reach "
                "consensus."
            )
        return mixing

    def set_node_weights(self, node_weights):
        """Set every node's weights (a list of weight lists, one per node)."""
        reference = get_weights(self.model)
        check_same_shapes(reference, node_weights)
        self.node_weights = [[np.array(w) for w in weights] for weights in node_weights]

    def get_weights(self):
        """The nodes' average weights."""
        return [np.mean([np.asarray(w[i], "float64") for w in self.node_weights], axis=0)
                .astype(np.asarray(self.node_weights[0][i]).dtype)
                for i in range(len(self.node_weights[0]))]

    def get_config(self):
        update = self.client_update
        return {
            "client_optimizer": update.client_optimizer,
            "topology": self.topology if isinstance(self.topology, str)
            else np.asarray(self.topology).tolist(),
            "mixing": None if self.mixing is None else np.asarray(self.mixing).tolist(),
            "local_epochs": self.local_epochs,
            "batch_size": update.batch_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, model_fn):
        """Rebuild from `get_config()`; the model function is not serializable."""
        return cls(model_fn, **config)

    def fit(self, client_data, rounds, test_data=None, target_accuracy=None, verbose=0):
        """Run `rounds` rounds; `client_data[i]` is node i's `(x, y)`.

        Nodes start from the model's initial weights unless `set_node_weights`
        was called. `target_accuracy` stops after the first round whose averaged
        model reaches it on `test_data`. Returns a `FederatedHistory`.
        """
        client_data = check_client_data(client_data)
        check_fit_arguments(rounds, test_data, target_accuracy)
        num_nodes = len(client_data)
        mixing = self.mixing_matrix(num_nodes)
        if self.node_weights is None:
            self.node_weights = [get_weights(self.model)] * num_nodes
        elif len(self.node_weights) != num_nodes:
            raise ValueError(
                f"{len(self.node_weights)} nodes have weights but {num_nodes} nodes' "
                "data were given.")
        model_bytes = sum(np.asarray(w).nbytes for w in self.node_weights[0])
        messages = int(np.count_nonzero(mixing - np.diag(np.diag(mixing))))
        pad_to = max(len(x) for x, _ in client_data)
        history = FederatedHistory()
        for _ in range(rounds):
            self.server_round += 1
            start = time.perf_counter()
            if self.local_epochs:
                self.node_weights = [
                    self.client_update(weights, x, y,
                                       client_rng(self.seed, self.server_round, node),
                                       pad_to=pad_to)
                    for node, (weights, (x, y)) in enumerate(zip(self.node_weights, client_data))
                ]
            self.node_weights = mix(self.node_weights, mixing)
            history.seconds.append(time.perf_counter() - start)
            history.clients.append(list(range(num_nodes)))
            history.bytes_up.append(messages * model_bytes)
            history.bytes_down.append(messages * model_bytes)
            history.extra.setdefault("consensus_distance", []).append(
                consensus_distance(self.node_weights))
            set_weights(self.model, self.get_weights())
            record_evaluation(history, self.model, test_data)
            if verbose:
                print(f"round {self.server_round}: consensus distance "
                      f"{history.extra['consensus_distance'][-1]:.4g} "
                      f"accuracy={history.accuracy[-1]}")
            if reached(history, target_accuracy):
                break
        return history
