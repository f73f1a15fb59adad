"""Federated learning on the digits: FedSGD vs FedAvg, IID vs non-IID, and gossip.

The shape of McMahan et al.'s Table 2 at toy scale: the 1,347 training digits
are split among 20 clients (~67 each), IID or as McMahan's pathological shards
(at most 2 classes per client). Each round samples C = 0.2 of the clients.
FedSGD (E = 1, B = ∞) is the baseline; FedAvg runs (E, B) ∈ {(1, 50), (1, 10),
(5, 10)} on IID data and (1, 10) on the shards. Decentralized SGD (every node
trains one epoch with B = 10, then averages with its Metropolis–Hastings
neighbours) runs on a ring and on a 4×5 torus. One FedAvg run adds DP-FedAvg
(clipping and Gaussian noise) to show what the noise costs. A run stops at the
target test accuracy (or the round budget) and reports the rounds it took, the
speed-up over FedSGD on the same split, and the megabytes sent up and down
until then; the curves are the global (for gossip: the averaged) model's test
accuracy per round. The variants and the 80 % target are chosen so that the
experiment's 3 seeds fit in about a minute on two cores.
"""

import keras
import numpy as np

from keras_efficient import federated
from keras_efficient.demo import base

_CLIENTS = 20
_FRACTION = 0.2
_LEARNING_RATE = 0.3
_TARGET = 0.8
# McMahan et al. 2017, Table 2 (MNIST CNN, 100 clients, C = 0.1, rounds to 99 %
# test accuracy): FedSGD 626 rounds IID, 483 non-IID; the speed-ups of FedAvg
# over FedSGD for the (E, B, split) of our variants.
_PAPER_SPEEDUP = {(1, None, "iid"): 1.0, (1, 50, "iid"): 9.6, (1, 10, "iid"): 18.4,
                  (5, 10, "iid"): 31.3, (1, None, "shards"): 1.0, (1, 10, "shards"): 1.4}
# FedSGD's rounds to the target, per (seed, split), for the speed-ups of later variants.
_FEDSGD_ROUNDS = {}


def _mlp(context):
    def model_fn():
        model = keras.Sequential([
            keras.Input(context.data.x_train.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(context.data.num_classes),
        ])
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    return model_fn


def _clients(context, split):
    data = context.data
    partitioner = {"iid": federated.iid_partition, "shards": federated.shard_partition}[split]
    return partitioner(data.y_train, _CLIENTS, seed=context.seed).split(
        data.x_train, data.y_train)


def _result(history, context, split, rounds_to_target, paper_speedup=np.nan):
    rounds = rounds_to_target or np.nan
    fedsgd = _FEDSGD_ROUNDS.get((context.seed, split), np.nan)
    bytes_used = history.bytes_to_round(rounds_to_target or history.rounds)
    return base.RunResult(
        test_accuracy=history.accuracy[-1],
        val_curve=list(history.accuracy),
        step_seconds=float(np.median(history.seconds)),
        extra={"rounds_to_target": rounds, "speedup": fedsgd / rounds,
               "paper_speedup": paper_speedup,
               "MB_to_target": bytes_used / 1e6 if rounds_to_target else np.nan},
    )


def _fedavg(split, local_epochs=1, batch_size=None, **private):
    def run(context):
        algorithm = federated.FedAvg(
            _mlp(context), context.make_optimizer(_LEARNING_RATE, "sgd"), local_epochs=local_epochs,
            batch_size=batch_size, clients_per_round=_FRACTION, seed=context.seed, **private)
        history = algorithm.fit(_clients(context, split), rounds=context.epochs,
                                test_data=(context.data.x_test, context.data.y_test),
                                target_accuracy=_TARGET)
        reached = history.rounds_to_target(_TARGET)
        if batch_size is None:
            _FEDSGD_ROUNDS[(context.seed, split)] = reached or np.nan
        paper = np.nan if private else _PAPER_SPEEDUP.get(
            (local_epochs, batch_size, split), np.nan)
        return _result(history, context, split, reached, paper)

    return run


def _gossip(topology):
    def run(context):
        algorithm = federated.DecentralizedSGD(
            _mlp(context), context.make_optimizer(_LEARNING_RATE, "sgd"), topology=topology,
            local_epochs=1, batch_size=10, seed=context.seed)
        history = algorithm.fit(_clients(context, "iid"), rounds=max(context.epochs // 5, 2),
                                test_data=(context.data.x_test, context.data.y_test),
                                target_accuracy=_TARGET)
        result = _result(history, context, "iid", history.rounds_to_target(_TARGET))
        result.extra["consensus_distance"] = history.extra["consensus_distance"][-1]
        return result

    return run


base.register_experiment(
    base.Experiment(
        name="federated",
        title="Federated learning: FedSGD vs FedAvg, IID vs shards, gossip ring vs torus",
        description=(
            f"Digits MLP (64 hidden units) on {_CLIENTS} clients, C = {_FRACTION}, client "
            f"SGD lr {_LEARNING_RATE}; each run stops at test accuracy {_TARGET} (accuracy "
            "column: where it stopped) or after the round budget (epochs). "
            "rounds_to_target (nan: not reached), speedup = FedSGD's rounds on the same "
            "split / the variant's, MB_to_target = model bytes sent up and down until "
            f"the target. Gossip: all {_CLIENTS} nodes train 1 epoch (B = 10) per round, "
            "then average with their Metropolis-Hastings neighbours (a fifth of the "
            "rounds); its bytes are node-to-node messages. _dp: DP-FedAvg, client updates "
            "clipped to norm 1, Gaussian noise z = 0.5 (std 0.5/4 on the average). "
            "step ms = median round time. paper_speedup: McMahan et al. 2017, Table 2, "
            "MNIST CNN to 99 % (100 clients, C = 0.1) for the same E, B and split: "
            "FedSGD 626 rounds IID and 483 non-IID; E=1 B=50 65 rounds IID (9.6x); "
            "E=1 B=10 34 IID (18.4x), 350 non-IID (1.4x); E=5 B=10 20 IID (31.3x)."
        ),
        variants={
            "fedsgd_iid": _fedavg("iid"),
            "fedavg_e1_b50_iid": _fedavg("iid", 1, 50),
            "fedavg_e1_b10_iid": _fedavg("iid", 1, 10),
            "fedavg_e5_b10_iid": _fedavg("iid", 5, 10),
            "fedavg_e1_b10_iid_dp": _fedavg("iid", 1, 10, clipping_norm=1.0,
                                            noise_multiplier=0.5),
            "fedsgd_shards": _fedavg("shards"),
            "fedavg_e1_b10_shards": _fedavg("shards", 1, 10),
            "gossip_ring": _gossip("ring"),
            "gossip_torus": _gossip("torus"),
        },
        baseline="fedsgd_iid",
        epochs=80,
        ignored_settings={
            "trainer.batch_size": "each variant sets its clients' batch size B",
            "runtime.jit_compile": "the client models are compiled with Keras's defaults",
            "runtime.steps_per_execution": "the clients train in the algorithm's own loop",
        },
    )
)
