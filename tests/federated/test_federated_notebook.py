"""The federated digits notebook runs end to end in smoke mode (offline, no Flower)."""

import pathlib

import numpy as np
import pytest

from keras_efficient.testing import run_notebook

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "federated_digits.ipynb"


@pytest.fixture(scope="module")
def namespace():
    import matplotlib.pyplot as plt

    yield run_notebook(NOTEBOOK)
    plt.close("all")


def test_federated_notebook__simulates_fedsgd_fedavg_and_gossip(namespace):
    assert namespace["SMOKE"] is True and namespace["RUN_FLOWER"] is False
    assert max(namespace["shards"].summary()["classes"]) <= 2
    histories = namespace["histories"]
    assert len(histories) == 5
    for name, history in histories.items():
        expected = 2 if name.startswith("gossip") else namespace["ROUNDS"]
        assert history.rounds == expected
        assert all(0.0 <= a <= 1.0 for a in history.accuracy)
    # FedSGD: 4 clients x 1 full-batch step; FedAvg E=5 B=10 learns more per round.
    assert histories["FedAvg E=5 B=10, iid"].accuracy[-1] > histories["FedSGD, iid"].accuracy[-1]
    distances = histories["gossip ring, iid"].extra["consensus_distance"]
    assert np.all(np.isfinite(distances)) and distances[-1] > 0
