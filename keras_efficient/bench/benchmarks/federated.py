"""The overhead of being federated: one FedAvg round vs the same steps in one `fit`.

One round of the in-process simulation (10 clients of 50 digits each, E = 2
local epochs of B = 10: 100 local steps, the server's average, no test
evaluation) against one `fit` of the same model over the same 500 examples for
2 epochs of batch 10 (also 100 steps). The simulation swaps each client's state
into one compiled train step, so the claim is that a round costs at most 1.3×
the plain `fit` (ratio ≤ 1.3).

`fedavg_round_parallel` is the same round with `parallel_clients=True` (the
10 clients in one compiled function, over the devices the process has). Beside
them, the same round on Flower's simulation engine (when `flwr` is
installed): 10 virtual SuperNodes run by 2 Ray workers of 1 CPU each. One
simulation stays up for the whole benchmark and its server waits for each
timed call before the next round, so a call is one Flower round (messages,
client training in the workers, aggregation). Its start-up (Ray, the workers
importing TensorFlow and tracing, the first round) is printed separately.
"""

import functools
import importlib.util
import logging
import queue
import threading
import time
import weakref

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


def _setup_fedavg(parallel_clients=False):
    x, y = _data()
    clients = federated.iid_partition(y, CLIENTS, seed=0).split(x, y)
    algorithm = federated.FedAvg(_model_fn, keras.optimizers.SGD(0.1),
                                 local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE,
                                 parallel_clients=parallel_clients)
    return lambda: algorithm.fit(clients, rounds=1)


class _Stop(Exception):
    """Ends the Flower simulation when the benchmark is done with it."""


class _SteppedFedAvg(federated.FedAvg):
    """FedAvg whose server, after each round's aggregation, waits for the next call."""

    def __init__(self, *args, go, done, **kwargs):
        super().__init__(*args, **kwargs)
        self.go, self.done = go, done

    def aggregate(self, *args, **kwargs):
        noise_stddev = super().aggregate(*args, **kwargs)
        self.done.put(None)
        if not self.go.get():
            raise _Stop
        return noise_stddev


def _run_flower(algorithm, clients):
    from keras_efficient.federated import flower

    try:
        flower.run_simulation(algorithm, clients, rounds=10**6)
    except _Stop:
        pass


def _stop_flower(go, thread):
    go.put(False)
    thread.join()


class _FlowerRounds:
    """A Flower simulation in a background thread; each call runs one round."""

    def __init__(self):
        from keras_efficient.federated import flower  # noqa: F401 - sets up Flower's logger

        logging.getLogger("flwr").setLevel(logging.WARNING)  # no log lines per round
        x, y = _data()
        clients = federated.iid_partition(y, CLIENTS, seed=0).split(x, y)
        self.go, self.done = queue.Queue(), queue.Queue()
        algorithm = _SteppedFedAvg(_model_fn, keras.optimizers.SGD(0.1),
                                   local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE,
                                   go=self.go, done=self.done)
        start = time.perf_counter()
        thread = threading.Thread(target=_run_flower, args=(algorithm, clients), daemon=True)
        thread.start()
        self.done.get()
        print(f"  flower start-up (Ray, 2 workers importing TensorFlow and tracing, "
              f"round 1): {time.perf_counter() - start:.1f} s", flush=True)
        # The simulation ends when the benchmark drops this object (or at exit).
        weakref.finalize(self, _stop_flower, self.go, thread)

    def __call__(self):
        self.go.put(True)
        self.done.get()


_CASES = [Case("fit", _setup_fit), Case("fedavg_round", _setup_fedavg, max_ratio=1.3),
          Case("fedavg_round_parallel", functools.partial(_setup_fedavg, parallel_clients=True))]
if importlib.util.find_spec("flwr") is not None:
    _CASES.append(Case("flower_round", _FlowerRounds))

BENCHMARKS = [
    Benchmark(
        name="federated",
        description=(
            f"One FedAvg round ({CLIENTS} clients x {PER_CLIENT} digits, E={LOCAL_EPOCHS}, "
            f"B={BATCH_SIZE}: {CLIENTS * PER_CLIENT * LOCAL_EPOCHS // BATCH_SIZE} local "
            "steps, digits MLP) vs one fit over the same examples and steps; "
            "flower_round: the same round on Flower's simulation (2 Ray workers, 1 CPU each)."
        ),
        cases=_CASES,
        baseline="fit",
        rounds=15,
    )
]
