"""Client data: split one dataset's examples among simulated clients."""

import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.federated.Partition")
class Partition:
    """Per-client example indices into one dataset, each example exactly once.

    The partitioners (`iid_partition`, `shard_partition`,
    `dirichlet_partition`, `quantity_skew_partition`) return one; `split(x, y)`
    turns it into the per-client `(x, y)` list that `FedAvg.fit` and
    `DecentralizedSGD.fit` take.

    Args:
        indices: a list with one integer index array per client. Together they
            must hold every index in `[0, num_examples)` exactly once, and no
            client may be empty.
        num_examples: the size of the dataset being split.
        labels: optional integer labels of the dataset, for the summary.

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> part = ke.federated.Partition([np.array([0, 2]), np.array([1])], num_examples=3)
    >>> part.sizes.tolist()
    [2, 1]
    """

    def __init__(self, indices, num_examples, labels=None):
        validate_size("num_examples", num_examples)
        if len(indices) == 0:
            raise ValueError(
                "Invalid value received for argument `indices`. Expected at least one "
                "client. Received: 0 clients"
            )
        self.indices = [np.asarray(index, dtype="int64") for index in indices]
        for client, index in enumerate(self.indices):
            if index.size == 0:
                raise ValueError(
                    f"Client {client} has no data. Every client needs at least one "
                    "example: use fewer clients or a larger `min_size`/`alpha`."
                )
        merged = np.sort(np.concatenate(self.indices))
        if merged.size != num_examples or not np.array_equal(merged, np.arange(num_examples)):
            raise ValueError(
                "Invalid value received for argument `indices`. Expected every index in "
                f"[0, {num_examples}) exactly once across clients. Received: "
                f"{merged.size} indices, {np.unique(merged).size} distinct"
            )
        self.num_examples = int(num_examples)
        self.labels = None if labels is None else np.asarray(labels)

    @property
    def num_clients(self):
        return len(self.indices)

    @property
    def sizes(self):
        """Number of examples of each client."""
        return np.array([index.size for index in self.indices])

    def split(self, x, y):
        """Return `[(x[idx], y[idx]) for each client]`."""
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != self.num_examples or len(y) != self.num_examples:
            raise ValueError(
                f"Expected `x` and `y` with {self.num_examples} examples (the partitioned "
                f"dataset). Received: len(x)={len(x)}, len(y)={len(y)}"
            )
        return [(x[index], y[index]) for index in self.indices]

    def summary(self):
        """Per-client examples and classes, and totals, as a dict of lists."""
        result = {"examples": self.sizes.tolist()}
        if self.labels is not None:
            result["classes"] = [int(np.unique(self.labels[i]).size) for i in self.indices]
        return result

    def __repr__(self):
        sizes = self.sizes
        text = (
            f"Partition({self.num_clients} clients, {self.num_examples} examples, "
            f"{sizes.min()}-{sizes.max()} per client"
        )
        if self.labels is not None:
            classes = self.summary()["classes"]
            text += f", {min(classes)}-{max(classes)} classes per client"
        return text + ")"


def _labels(labels):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
        labels = labels.argmax(axis=1)
    labels = labels.reshape(len(labels))
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            "Invalid type received for argument `labels`. Expected integer class ids "
            f"(or one-hot rows). Received: dtype {labels.dtype}"
        )
    return labels


def _check_clients(num_clients, num_examples):
    validate_size("num_clients", num_clients)
    if num_clients > num_examples:
        raise ValueError(
            f"Invalid value received for argument `num_clients`. Expected an integer "
            f"value in [1, {num_examples}] (the number of examples). "
            f"Received: num_clients={num_clients}"
        )


@export("keras_efficient.federated.iid_partition")
def iid_partition(labels, num_clients, seed=None):
    """Shuffle the examples and deal them into `num_clients` equal parts.

    Args:
        labels: the dataset's labels (integer ids or one-hot), one per example.
        num_clients: how many clients.
        seed: integer seed of the shuffle.

    Returns:
        A `Partition`.

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> part = ke.federated.iid_partition(np.arange(100) % 10, num_clients=4, seed=0)
    >>> part.sizes.tolist()
    [25, 25, 25, 25]
    """
    labels = _labels(labels)
    _check_clients(num_clients, len(labels))
    order = np.random.default_rng(validate_seed("seed", seed)).permutation(len(labels))
    return Partition(np.array_split(order, num_clients), len(labels), labels)


@export("keras_efficient.federated.shard_partition")
def shard_partition(labels, num_clients, shards_per_client=2, seed=None):
    """McMahan et al.'s pathological non-IID split: shards of sorted labels.

    Cuts the examples, sorted by label, into `num_clients * shards_per_client`
    shards and gives each client `shards_per_client` random shards (McMahan et
    al. 2017, §3: 200 shards of 300 MNIST images, 2 per client). Here a shard
    never spans two classes when there are at least as many shards as classes
    (each class gets a number of shards proportional to its size), so a client
    sees at most `shards_per_client` classes.

    Args:
        labels: the dataset's labels (integer ids or one-hot).
        num_clients: how many clients.
        shards_per_client: shards (at most as many classes) per client.
        seed: integer seed of the shard assignment.

    Returns:
        A `Partition`.

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> part = ke.federated.shard_partition(np.arange(100) % 10, num_clients=5, seed=0)
    >>> max(part.summary()["classes"]) <= 2
    True

    Reference:
    - [McMahan et al., 2017](https://arxiv.org/abs/1602.05629)
    """
    labels = _labels(labels)
    validate_size("shards_per_client", shards_per_client)
    _check_clients(num_clients, len(labels))
    num_shards = num_clients * shards_per_client
    if num_shards > len(labels):
        raise ValueError(
            f"num_clients * shards_per_client = {num_shards} shards exceed the "
            f"{len(labels)} examples. Use fewer clients or shards per client."
        )
    rng = np.random.default_rng(validate_seed("seed", seed))
    classes, counts = np.unique(labels, return_counts=True)
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    if num_shards >= len(classes):
        shards = [piece for index, count in zip(by_class, _shards_per_class(counts, num_shards))
                  for piece in np.array_split(index, count)]
    else:  # fewer shards than classes: cut the sorted examples as McMahan et al.
        shards = np.array_split(np.concatenate(by_class), num_shards)
    owner = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return Partition(
        [np.concatenate([shards[s] for s in row]) for row in owner], len(labels), labels
    )


def _shards_per_class(counts, num_shards):
    """Split `num_shards` among classes in proportion to `counts`, at least one each
    and at most one per example (largest remainders)."""
    extra = num_shards - len(counts)
    share = counts / counts.sum() * extra
    allocation = np.floor(share).astype("int64")
    remainder_order = np.argsort(-(share - allocation), kind="stable")
    allocation[remainder_order[: extra - allocation.sum()]] += 1
    return np.minimum(allocation + 1, counts)


def _split_by_proportions(index, proportions):
    cuts = np.round(np.cumsum(proportions)[:-1] * len(index)).astype("int64")
    return np.split(index, cuts)


@export("keras_efficient.federated.dirichlet_partition")
def dirichlet_partition(labels, num_clients, alpha, min_size=1, seed=None, max_attempts=100):
    """Label skew: each class is split among clients by Dirichlet(α) proportions.

    For every class, proportions `p ~ Dir(α·1)` over the clients decide how many
    of its examples each client gets (Hsu et al. 2019). Small α gives clients few
    classes; large α approaches the IID split. Draws are repeated until every
    client has `min_size` examples.

    Args:
        labels: the dataset's labels (integer ids or one-hot).
        num_clients: how many clients.
        alpha: concentration, > 0.
        min_size: the fewest examples a client may get (>= 1).
        seed: integer seed.
        max_attempts: draws before giving up with an error.

    Returns:
        A `Partition`.

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> part = ke.federated.dirichlet_partition(np.arange(200) % 10, 4, alpha=100.0, seed=0)
    >>> part.num_clients
    4

    Reference:
    - [Hsu et al., 2019](https://arxiv.org/abs/1909.06335)
    """
    labels = _labels(labels)
    _check_clients(num_clients, len(labels))
    validate_number("alpha", alpha, 0, low_inclusive=False)
    validate_size("min_size", min_size)
    validate_size("max_attempts", max_attempts)
    rng = np.random.default_rng(validate_seed("seed", seed))
    for _ in range(max_attempts):
        parts = [[] for _ in range(num_clients)]
        for label in np.unique(labels):
            index = rng.permutation(np.flatnonzero(labels == label))
            proportions = rng.dirichlet(np.full(num_clients, float(alpha)))
            for client, piece in enumerate(_split_by_proportions(index, proportions)):
                parts[client].append(piece)
        indices = [np.concatenate(p) for p in parts]
        if min(len(i) for i in indices) >= min_size:
            return Partition(indices, len(labels), labels)
    raise ValueError(
        f"No Dirichlet draw gave every client at least min_size={min_size} examples in "
        f"{max_attempts} attempts (num_clients={num_clients}, alpha={alpha}). Use a "
        "larger `alpha`, fewer clients or a smaller `min_size`."
    )


@export("keras_efficient.federated.quantity_skew_partition")
def quantity_skew_partition(labels, num_clients, alpha=1.0, seed=None):
    """Quantity skew: IID examples, client sizes drawn from Dirichlet(α).

    Every client gets one example, and the rest are dealt by proportions
    `p ~ Dir(α·1)` over the clients (small α: a few large clients, many tiny
    ones; large α: equal sizes).

    Args:
        labels: the dataset's labels (integer ids or one-hot).
        num_clients: how many clients.
        alpha: concentration of the size proportions, > 0.
        seed: integer seed.

    Returns:
        A `Partition`.

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> part = ke.federated.quantity_skew_partition(np.arange(100) % 10, 5, alpha=0.5, seed=0)
    >>> int(part.sizes.sum())
    100
    """
    labels = _labels(labels)
    _check_clients(num_clients, len(labels))
    validate_number("alpha", alpha, 0, low_inclusive=False)
    rng = np.random.default_rng(validate_seed("seed", seed))
    order = rng.permutation(len(labels))
    extra = rng.multinomial(len(labels) - num_clients, rng.dirichlet(np.full(num_clients, float(alpha))))
    cuts = np.cumsum(extra + 1)[:-1]
    return Partition(np.split(order, cuts), len(labels), labels)
