"""The overhead of being federated: one FedAvg round vs the same steps in one `fit`.

One round of the in-process simulation (10 clients of 50 digits each, E = 2
local epochs of B = 10: 100 local steps, the server's average, no test
evaluation) against one `fit` of the same model over the same 500 examples for
2 epochs of batch 10 (also 100 steps). The simulation swaps each client's state
into one compiled train step, so the claim is that a round costs at most 1.3×
the plain `fit` (ratio ≤ 1.3).
"""

import functools

import keras

from keras_efficient import federated
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case
from keras_efficient.data import load_digits

CLIENTS = 10
PER_CLIENT = 50
LOCAL_EPOCHS = 2
BATCH_SIZE = 10


@functools.cache
def _data():
    data = load_digits()
    count = CLIENTS * PER_CLIENT
    return data.x_train[:count], data.y_train[:count]


def _model_fn():
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.SGD(0.1))
    return model


def _setup_fit():
    x, y = _data()
    model = _model_fn()
    return lambda: model.fit(x, y, batch_size=BATCH_SIZE, epochs=LOCAL_EPOCHS, verbose=0)


def _setup_fedavg():
    x, y = _data()
    clients = federated.iid_partition(y, CLIENTS, seed=0).split(x, y)
    algorithm = federated.FedAvg(_model_fn, keras.optimizers.SGD(0.1),
                                 local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE)
    return lambda: algorithm.fit(clients, rounds=1)


BENCHMARKS = [
    Benchmark(
        name="federated",
        description=(
            f"One FedAvg round ({CLIENTS} clients x {PER_CLIENT} digits, E={LOCAL_EPOCHS}, "
            f"B={BATCH_SIZE}: {CLIENTS * PER_CLIENT * LOCAL_EPOCHS // BATCH_SIZE} local "
            "steps, digits MLP) vs one fit over the same examples and steps."
        ),
        cases=[Case("fit", _setup_fit), Case("fedavg_round", _setup_fedavg, max_ratio=1.3)],
        baseline="fit",
    )
]
