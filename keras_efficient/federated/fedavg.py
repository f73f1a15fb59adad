"""Federated Averaging (FedAvg / FedSGD) with server optimizers, FedProx and DP."""

import numbers
import time
import warnings

import keras
import numpy as np

from keras_efficient.federated.client import ClientUpdate
from keras_efficient.federated.client import client_rng
from keras_efficient.federated.client import get_weights
from keras_efficient.federated.client import optimizer_config
from keras_efficient.federated.client import set_weights
from keras_efficient.federated.history import FederatedHistory
from keras_efficient.federated.parallel import ParallelClientUpdate
from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


def check_client_data(client_data):
    """Validate a list of per-client `(x, y)` pairs; return it as numpy arrays."""
    if isinstance(client_data, tuple) or len(client_data) == 0:
        raise ValueError(
            "Invalid value received for argument `client_data`. Expected a non-empty "
            f"list of per-client (x, y) pairs. Received: {type(client_data).__name__} "
            f"of length {len(client_data)}"
        )
    checked = []
    for client, pair in enumerate(client_data):
        x, y = (np.asarray(a) for a in pair)
        if len(x) == 0:
            raise ValueError(f"Client {client} has no data. Every client needs at least one example.")
        if len(x) != len(y):
            raise ValueError(
                f"Client {client} has {len(x)} inputs but {len(y)} labels; they must match.")
        checked.append((x, y))
    return checked


def check_same_shapes(reference, updates):
    """Raise if any update's weight shapes differ from `reference`'s."""
    expected = [np.shape(a) for a in reference]
    for client, update in enumerate(updates):
        shapes = [np.shape(a) for a in update]
        if shapes != expected:
            raise ValueError(
                f"Update {client} has weight shapes {shapes}; the global model has "
                f"{expected}. Every client must train the same architecture."
            )


@export("keras_efficient.federated.weighted_average")
def weighted_average(arrays, weights):
    """`sum_k weights[k] * arrays[k] / sum(weights)` per weight, in float64.

    Args:
        arrays: one list of numpy arrays per client, same shapes across clients.
        weights: one non-negative number per client.

    Returns:
        The averages, cast back to each weight's dtype.
    """
    reference = arrays[0]
    check_same_shapes(reference, arrays)
    factors = np.asarray(weights, dtype="float64") / np.sum(weights, dtype="float64")
    return [
        sum(f * np.asarray(update[i], dtype="float64") for f, update in zip(factors, arrays))
        .astype(np.asarray(reference[i]).dtype)
        for i in range(len(reference))
    ]


@export("keras_efficient.federated.FedAvg")
class FedAvg:
    """Federated Averaging: local training on sampled clients, then a weighted average.

    Each round samples `clients_per_round` clients, each trains the global weights
    for `local_epochs` epochs of minibatches of `batch_size` on its own data
    (`ClientUpdate`), and the server averages the returned weights weighted by
    the clients' example counts (McMahan et al. 2017). FedSGD is the case
    `local_epochs=1, batch_size=None` (one full-batch gradient step per client;
    see `FedSGD`).

    The server applies its optimizer to the pseudo-gradient
    `global - average` (Reddi et al. 2021): `SGD(1.0)` is plain averaging,
    `SGD(lr, momentum=β)` is FedAvgM, `Adam(lr, epsilon=τ)` is FedAdam (Keras's
    Adam, with bias correction as Flower's `FedAdam`). Non-trainable weights
    (e.g. normalization statistics) are averaged directly.

    With `clipping_norm`, each client's update `w_k - w` is clipped to that L2
    norm, the updates are averaged with equal weights and Gaussian noise of
    standard deviation `noise_multiplier * clipping_norm / clients` is added
    (DP-FedAvg with fixed clipping, McMahan et al. 2018; as Flower's
    `DifferentialPrivacyServerSideFixedClipping`). The noise's standard deviation
    is recorded in `history.extra["noise_stddev"]`.

    A client that raises or returns non-finite weights is dropped from the round
    with a warning, never averaged in.

    Args:
        model_fn: zero-argument function returning a compiled, built Keras model.
            Its `loss` is trained and its metrics evaluate the global model.
        client_optimizer: the clients' Keras optimizer (reset for each client).
        local_epochs: E, passes over a client's data per round.
        batch_size: B, the local minibatch size; None for the full client data.
        clients_per_round: C as a float in (0, 1] (the fraction of clients, at
            least one), or an integer count.
        server_optimizer: Keras optimizer on the pseudo-gradient; default
            `SGD(learning_rate=1.0)`.
        proximal_mu: FedProx's μ (Li et al. 2020); 0 is FedAvg.
        clipping_norm: L2 bound of a client's update for DP-FedAvg; None: off.
        noise_multiplier: z, the noise's standard deviation in units of
            `clipping_norm / clients`; needs `clipping_norm`.
        seed: integer seed of client sampling and local shuffling.
        parallel_clients: train the clients of a round at once in one compiled
            function, split over the devices (`ParallelClientUpdate`: on JAX a
            pure function vmapped over clients, on TensorFlow one model copy per
            client slot; models without non-trainable weights or random
            layers). Same result as one after another; a client that raises
            fails the whole round.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> def model_fn():
    ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ...     model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
    ...         from_logits=True), metrics=["accuracy"])
    ...     return model
    >>> rng = np.random.default_rng(0)
    >>> clients = [(rng.normal(size=(8, 4)), rng.integers(0, 3, 8)) for _ in range(4)]
    >>> fed = ke.federated.FedAvg(model_fn, keras.optimizers.SGD(0.1), local_epochs=2,
    ...              batch_size=4, clients_per_round=0.5)
    >>> history = fed.fit(clients, rounds=2)
    >>> history.rounds
    2

    Reference:
    - [McMahan et al., 2017](https://arxiv.org/abs/1602.05629)
    - [Reddi et al., 2021](https://arxiv.org/abs/2003.00295)
    - [Li et al., 2020](https://arxiv.org/abs/1812.06127)
    - [McMahan et al., 2018](https://arxiv.org/abs/1710.06963)
    """

    def __init__(self, model_fn, client_optimizer, local_epochs=1, batch_size=None,
                 clients_per_round=1.0, server_optimizer=None, proximal_mu=0.0,
                 clipping_norm=None, noise_multiplier=0.0, seed=0, parallel_clients=False):
        if isinstance(clients_per_round, numbers.Integral) and not isinstance(clients_per_round, bool):
            validate_size("clients_per_round", clients_per_round)
        else:
            validate_number("clients_per_round", clients_per_round, 0, 1, low_inclusive=False)
        if clipping_norm is not None:
            validate_number("clipping_norm", clipping_norm, 0, low_inclusive=False)
        validate_number("noise_multiplier", noise_multiplier, 0)
        if noise_multiplier and clipping_norm is None:
            raise ValueError(
                "`noise_multiplier` needs `clipping_norm`: the noise is scaled to the "
                "clipping bound. Received: clipping_norm=None, "
                f"noise_multiplier={noise_multiplier}"
            )
        self.clients_per_round = clients_per_round
        self.clipping_norm = clipping_norm
        self.noise_multiplier = noise_multiplier
        self.seed = validate_seed("seed", seed, allow_none=False)
        self.client_update = ClientUpdate(
            model_fn, client_optimizer, local_epochs, batch_size, proximal_mu)
        if not isinstance(parallel_clients, bool):
            raise TypeError(
                "Invalid value received for argument `parallel_clients`. Expected True or "
                f"False. Received: parallel_clients={parallel_clients!r}")
        self.parallel_clients = parallel_clients
        self._parallel = (
            ParallelClientUpdate(self.client_update) if parallel_clients else None)
        server_optimizer = server_optimizer or keras.optimizers.SGD(learning_rate=1.0)
        # A copy: the server's state must not be shared with the caller's object.
        self.server_optimizer = keras.optimizers.deserialize(optimizer_config(server_optimizer))
        model = self.model
        num_trainable = len(model.trainable_weights)
        # The server's copy of the trainable weights, updated by its optimizer.
        self._server_variables = [
            keras.Variable(v, trainable=True, name=f"server_{i}")
            for i, v in enumerate(get_weights(model)[:num_trainable])
        ]
        self._non_trainable = get_weights(model)[num_trainable:]
        self.server_round = 0

    @property
    def model(self):
        """The Keras model (holds the global weights after `fit`)."""
        return self.client_update.model

    @property
    def model_bytes(self):
        return int(sum(w.nbytes for w in self.get_weights()))

    def get_weights(self):
        """The global weights as numpy arrays (trainable, then non-trainable)."""
        return [np.array(keras.ops.convert_to_numpy(v.value)) for v in self._server_variables] + [
            np.array(w) for w in self._non_trainable]

    def set_weights(self, weights):
        """Replace the global weights (`get_weights` order and shapes)."""
        set_weights(self.model, weights)  # checks count and shapes
        num_trainable = len(self._server_variables)
        for variable, value in zip(self._server_variables, weights[:num_trainable]):
            variable.assign(value)
        self._non_trainable = [np.array(w) for w in weights[num_trainable:]]

    def sample_clients(self, server_round, num_clients):
        """The sorted client ids that take part in `server_round`."""
        if isinstance(self.clients_per_round, numbers.Integral):
            if self.clients_per_round > num_clients:
                raise ValueError(
                    f"Invalid value received for argument `clients_per_round`. Expected "
                    f"at most the {num_clients} clients. Received: "
                    f"clients_per_round={self.clients_per_round}"
                )
            count = self.clients_per_round
        else:
            # max(C·K, 1) rounded down as in McMahan et al. and Flower's `fraction_train`.
            count = max(int(self.clients_per_round * num_clients + 1e-9), 1)
        if count == num_clients:
            return np.arange(num_clients)
        rng = np.random.default_rng([self.seed, int(server_round)])
        return np.sort(rng.choice(num_clients, size=count, replace=False))

    def aggregate(self, updates, num_examples, rng=None):
        """Fold client weights into the global weights; return the noise stddev.

        Args:
            updates: one weight list (`get_weights` order) per client.
            num_examples: each client's example count (the averaging weights).
            rng: a `numpy.random.Generator` for DP noise.
        """
        current = self.get_weights()
        num_trainable = len(self._server_variables)
        check_same_shapes(current, updates)
        noise_stddev = 0.0
        if self.clipping_norm is None:
            average = weighted_average(updates, num_examples)
            deltas = [c - a for c, a in zip(current[:num_trainable], average)]
        else:
            deltas, average = self._private_deltas(current, updates, rng)
            noise_stddev = self.noise_multiplier * self.clipping_norm / len(updates)
        self.server_optimizer.apply_gradients(zip(
            [keras.ops.convert_to_tensor(d) for d in deltas], self._server_variables))
        self._non_trainable = average[num_trainable:]
        return noise_stddev

    def _private_deltas(self, current, updates, rng):
        num_trainable = len(self._server_variables)
        clipped = []
        for update in updates:
            delta = [np.asarray(u, "float64") - np.asarray(c, "float64")
                     for u, c in zip(update[:num_trainable], current)]
            norm = np.sqrt(sum(np.sum(d**2) for d in delta))
            clipped.append([d * min(1.0, self.clipping_norm / max(norm, 1e-12)) for d in delta])
        stddev = self.noise_multiplier * self.clipping_norm / len(updates)
        rng = rng or np.random.default_rng()
        deltas = [
            -(np.mean([c[i] for c in clipped], axis=0) + rng.normal(0.0, stddev, current[i].shape))
            .astype(current[i].dtype)
            for i in range(num_trainable)
        ]
        average = weighted_average(updates, [1.0] * len(updates))
        return deltas, average

    def fit(self, client_data, rounds, test_data=None, target_accuracy=None, verbose=0):
        """Run `rounds` rounds of federated training in this process.

        Args:
            client_data: list of per-client `(x, y)` (see `Partition.split`).
            rounds: number of rounds (continues from earlier `fit` calls).
            test_data: optional `(x, y)` to evaluate the global model each round.
            target_accuracy: optional; stop after the first round whose test
                accuracy reaches it (needs `test_data`).
            verbose: 1 prints one line per round.

        Returns:
            A `FederatedHistory`.
        """
        client_data = check_client_data(client_data)
        check_fit_arguments(rounds, test_data, target_accuracy)
        history = FederatedHistory()
        pad_to = max(len(x) for x, _ in client_data)
        for _ in range(rounds):
            self.server_round += 1
            start = time.perf_counter()
            sampled = self.sample_clients(self.server_round, len(client_data))
            kept, updates = self._train_clients(sampled, client_data, pad_to)
            noise_stddev = 0.0
            if updates:
                noise_stddev = self.aggregate(
                    updates, [len(client_data[k][0]) for k in kept],
                    rng=np.random.default_rng([self.seed, self.server_round, 2**31]))
            set_weights(self.model, self.get_weights())
            history.seconds.append(time.perf_counter() - start)
            history.clients.append(kept)
            history.bytes_down.append(len(sampled) * self.model_bytes)
            history.bytes_up.append(len(kept) * self.model_bytes)
            history.extra.setdefault("noise_stddev", []).append(noise_stddev)
            record_evaluation(history, self.model, test_data)
            if verbose:
                print(f"round {self.server_round}: clients={len(kept)} "
                      f"accuracy={history.accuracy[-1]} loss={history.loss[-1]}")
            if reached(history, target_accuracy):
                break
        return history

    def _train_clients(self, sampled, client_data, pad_to):
        weights = self.get_weights()
        rngs = [client_rng(self.seed, self.server_round, client) for client in sampled]
        if self._parallel is not None:
            results = self._parallel(
                weights, [(*client_data[c], rng) for c, rng in zip(sampled, rngs)], pad_to)
        else:
            results = []
            for client, rng in zip(sampled, rngs):
                try:
                    results.append(self.client_update(weights, *client_data[client], rng,
                                                      pad_to=pad_to))
                except Exception as exception:  # noqa: BLE001 - a failing client must not stop the round
                    warnings.warn(
                        f"Client {client} failed in round {self.server_round} and is "
                        f"dropped: {exception!r}", stacklevel=3)
                    results.append(exception)
        kept, updates = [], []
        for client, update in zip(sampled, results):
            if isinstance(update, Exception):
                continue
            if not all(np.all(np.isfinite(w)) for w in update
                       if np.issubdtype(np.asarray(w).dtype, np.floating)):
                warnings.warn(
                    f"Client {client} returned non-finite weights in round "
                    f"{self.server_round} and is dropped.", stacklevel=3)
                continue
            kept.append(int(client))
            updates.append(update)
        errors = [r for r in results if isinstance(r, Exception)]
        if not updates and errors:
            raise RuntimeError(
                f"Every sampled client failed in round {self.server_round}.") from errors[-1]
        if not updates:
            warnings.warn(
                f"No client update was usable in round {self.server_round}; the global "
                "weights are unchanged.", stacklevel=3)
        return kept, updates

    def get_config(self):
        update = self.client_update
        return {
            "client_optimizer": update.client_optimizer,
            "local_epochs": update.local_epochs,
            "batch_size": update.batch_size,
            "clients_per_round": self.clients_per_round,
            "server_optimizer": optimizer_config(self.server_optimizer),
            "proximal_mu": update.proximal_mu,
            "clipping_norm": self.clipping_norm,
            "noise_multiplier": self.noise_multiplier,
            "seed": self.seed,
            "parallel_clients": self.parallel_clients,
        }

    @classmethod
    def from_config(cls, config, model_fn):
        """Rebuild from `get_config()`; the model function is not serializable."""
        config = dict(config)
        config["server_optimizer"] = keras.optimizers.deserialize(config["server_optimizer"])
        return cls(model_fn, **config)


@export("keras_efficient.federated.FedSGD")
class FedSGD(FedAvg):
    """FedSGD: FedAvg with one full-batch gradient step per client (E = 1, B = ∞).

    With all clients and `SGD(1.0)` on the server, a round equals one step of
    full-batch gradient descent on the union of the clients' data.

    Args:
        model_fn, client_optimizer, clients_per_round, server_optimizer,
        clipping_norm, noise_multiplier, seed, parallel_clients: as in `FedAvg`.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> def model_fn():
    ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    ...     model.compile(loss="mse")
    ...     return model
    >>> rng = np.random.default_rng(0)
    >>> clients = [(rng.normal(size=(8, 4)), rng.normal(size=(8, 1))) for _ in range(3)]
    >>> ke.federated.FedSGD(model_fn, keras.optimizers.SGD(0.1)).fit(clients, rounds=1).rounds
    1

    Reference:
    - [McMahan et al., 2017](https://arxiv.org/abs/1602.05629)
    """

    def __init__(self, model_fn, client_optimizer, clients_per_round=1.0,
                 server_optimizer=None, clipping_norm=None, noise_multiplier=0.0, seed=0,
                 parallel_clients=False):
        super().__init__(model_fn, client_optimizer, local_epochs=1, batch_size=None,
                         clients_per_round=clients_per_round, server_optimizer=server_optimizer,
                         clipping_norm=clipping_norm, noise_multiplier=noise_multiplier,
                         seed=seed, parallel_clients=parallel_clients)

    def get_config(self):
        config = super().get_config()
        for key in ("local_epochs", "batch_size", "proximal_mu"):
            config.pop(key)
        return config


def check_fit_arguments(rounds, test_data, target_accuracy):
    """Validate `fit`'s `rounds` and `target_accuracy` (which needs `test_data`)."""
    validate_size("rounds", rounds)
    if target_accuracy is not None:
        validate_number("target_accuracy", target_accuracy, 0, 1)
        if test_data is None:
            raise ValueError("`target_accuracy` needs `test_data` to measure the accuracy.")


def reached(history, target_accuracy):
    """Whether the last round's test accuracy reached `target_accuracy` (None: never)."""
    accuracy = history.accuracy[-1]
    return target_accuracy is not None and accuracy is not None and accuracy >= target_accuracy


def record_evaluation(history, model, test_data):
    """Append the model's test accuracy and loss (None without test data) to `history`."""
    if test_data is None:
        history.accuracy.append(None)
        history.loss.append(None)
        return
    logs = evaluate(model, *test_data)
    history.accuracy.append(logs.get("accuracy"))
    history.loss.append(logs["loss"])


def evaluate(model, x, y, max_batch=4096):
    """The compiled model's test loss and metrics; accuracy under the key `accuracy`.

    A test set of up to `max_batch` examples is one `test_on_batch` call (one
    trace, no per-call dataset overhead: evaluated every round); larger ones go
    through `model.evaluate`.
    """
    if len(x) <= max_batch:
        logs = model.test_on_batch(x, y, return_dict=True)
    else:
        logs = model.evaluate(x, y, batch_size=max_batch, verbose=0, return_dict=True)
    accuracy = [v for k, v in logs.items() if "acc" in k]
    if accuracy:
        logs["accuracy"] = float(accuracy[0])
    return logs
