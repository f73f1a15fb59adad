"""FedAvg on Flower: the same client update as a `ClientApp`, the server as a `ServerApp`.

Needs `pip install keras-efficient[federated]` (flwr[simulation] 1.42). The
`ClientApp` runs `FedAvg.client_update` (the object the in-process simulation
uses) on the node's partition; the `ServerApp` runs Flower's message-based
`FedAvg` strategy whose aggregation is `FedAvg.aggregate` (count-weighted
average, server optimizer, DP clipping and noise). With every client sampled
each round (`clients_per_round=1.0`) and the same seed, `run_simulation` ends
with the weights `FedAvg.fit` reaches in this process.

```python
fed = ke.federated.FedAvg(model_fn, keras.optimizers.SGD(0.1), local_epochs=1,
                          batch_size=10)
result = ke.federated.flower.run_simulation(fed, clients, rounds=5)
```

For a deployment (SuperLink and SuperNodes), expose `client_app(fed, data)` and
`server_app(fed, rounds)` from the app's module as `flwr run` expects; a node's
`node_config["partition-id"]` selects its entry of `data`.
"""

import uuid
import warnings

import numpy as np

from keras_efficient.federated.client import client_rng
from keras_efficient.federated.fedavg import check_client_data
from keras_efficient.utils import validate_size

try:
    import flwr.serverapp.strategy
    from flwr.app import ArrayRecord
    from flwr.app import ConfigRecord
    from flwr.app import Message
    from flwr.app import MetricRecord
    from flwr.app import RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
except ImportError as error:  # the optional extra is missing
    raise ImportError(
        "keras_efficient.federated.flower needs Flower: "
        "`pip install keras-efficient[federated]` (flwr[simulation]==1.42.*)."
    ) from error

# ClientUpdate per app, kept for the life of a worker process: Flower ships the
# app to its workers with every message, and the compiled model must survive.
_WORKER_UPDATES = {}


def _train(message, context, token, client_update, client_data, seed, pad_to):
    update = _WORKER_UPDATES.setdefault(token, client_update)
    partition = int(context.node_config["partition-id"])
    x, y = client_data[partition]
    server_round = int(message.content["config"]["server-round"])
    weights = update(
        message.content["arrays"].to_numpy_ndarrays(), x, y,
        client_rng(seed, server_round, partition), pad_to=pad_to)
    content = RecordDict({
        "arrays": ArrayRecord(weights),
        "metrics": MetricRecord({"num-examples": len(x)}),
    })
    return Message(content=content, reply_to=message)


def client_app(fedavg, client_data):
    """A Flower `ClientApp` that trains `fedavg`'s client update on node data.

    Args:
        fedavg: a `keras_efficient.federated.FedAvg` (its client update, seed).
        client_data: list of per-client `(x, y)`; node `partition-id` k trains
            on `client_data[k]`.

    Returns:
        A `flwr.clientapp.ClientApp`.
    """
    client_data = check_client_data(client_data)
    token = uuid.uuid4().hex
    pad_to = max(len(x) for x, _ in client_data)
    update, seed = fedavg.client_update, fedavg.seed
    app = ClientApp()

    @app.train()
    def train(message, context):
        return _train(message, context, token, update, client_data, seed, pad_to)

    return app


class _KerasFedAvg(flwr.serverapp.strategy.FedAvg):
    """Flower's FedAvg strategy whose aggregation is `FedAvg.aggregate`."""

    def __init__(self, fedavg, num_clients):
        fraction = fedavg.clients_per_round
        if not isinstance(fraction, float):
            fraction = fraction / num_clients
        count = fedavg.sample_clients(1, num_clients).size
        super().__init__(fraction_train=fraction, fraction_evaluate=0.0,
                         min_train_nodes=count, min_available_nodes=num_clients)
        self.fedavg = fedavg

    def aggregate_train(self, server_round, replies):
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        updates, counts = [], []
        for reply in valid:
            weights = reply.content["arrays"].to_numpy_ndarrays()
            if not all(np.all(np.isfinite(w)) for w in weights):
                warnings.warn(
                    f"Node {reply.metadata.src_node_id} returned non-finite weights in "
                    f"round {server_round} and is dropped.", stacklevel=2)
                continue
            updates.append(weights)
            counts.append(reply.content["metrics"]["num-examples"])
        if not updates:
            return None, None
        self.fedavg.server_round += 1
        self.fedavg.aggregate(updates, counts, rng=np.random.default_rng(
            [self.fedavg.seed, self.fedavg.server_round, 2**31]))
        return ArrayRecord(self.fedavg.get_weights()), MetricRecord(
            {"clients": len(updates)})


def server_app(fedavg, rounds, num_clients, results=None):
    """A Flower `ServerApp` running `rounds` rounds of `fedavg` on the grid.

    The global weights start from `fedavg.get_weights()` and end in `fedavg`.

    Args:
        fedavg: a `keras_efficient.federated.FedAvg`.
        rounds: number of rounds.
        num_clients: the number of SuperNodes to wait for.
        results: optional list; Flower's `Result` is appended to it.

    Returns:
        A `flwr.serverapp.ServerApp`.
    """
    validate_size("rounds", rounds)
    validate_size("num_clients", num_clients)
    app = ServerApp()

    @app.main()
    def main(grid, context):
        strategy = _KerasFedAvg(fedavg, num_clients)
        result = strategy.start(
            grid=grid, initial_arrays=ArrayRecord(fedavg.get_weights()),
            num_rounds=rounds, train_config=ConfigRecord({"seed": fedavg.seed}))
        fedavg.set_weights(result.arrays.to_numpy_ndarrays())
        if results is not None:
            results.append(result)

    return app


def run_simulation(fedavg, client_data, rounds, backend_config=None, verbose=False):
    """Run `fedavg` for `rounds` rounds on Flower's simulation engine (Ray).

    One virtual SuperNode per client; each runs `client_app`'s update in a Ray
    worker. `fedavg` holds the final global weights afterwards.

    Args:
        fedavg: a `keras_efficient.federated.FedAvg`.
        client_data: list of per-client `(x, y)`.
        rounds: number of rounds.
        backend_config: Flower's backend config; default: 1 CPU per client, at
            most 2 Ray CPUs, a 100 MB object store.
        verbose: Flower's debug logging.

    Returns:
        Flower's `Result` (per-round metrics; `result.arrays` the final weights).
    """
    validate_size("rounds", rounds)
    from flwr.simulation import run_simulation as flower_run_simulation

    client_data = check_client_data(client_data)
    backend_config = backend_config or {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": min(2, len(client_data)),
                      "object_store_memory": 100 * 1024**2},
    }
    results = []
    flower_run_simulation(
        server_app=server_app(fedavg, rounds, len(client_data), results),
        client_app=client_app(fedavg, client_data),
        num_supernodes=len(client_data),
        backend_config=backend_config,
        verbose_logging=verbose,
    )
    if not results:
        raise RuntimeError("The Flower simulation ended without a result; see its log.")
    return results[0]
