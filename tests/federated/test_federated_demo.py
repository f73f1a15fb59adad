"""The `federated` demo experiment, end to end on the digits with a low target."""

import numpy as np
import pytest

from keras_efficient.data import load_digits
from keras_efficient.demo import base
from keras_efficient.demo.experiments import federated as demo


def test_federated_demo__rounds_speedup_and_bytes(monkeypatch):
    monkeypatch.setattr(demo, "_TARGET", 0.6)
    monkeypatch.setattr(demo, "_FEDSGD_ROUNDS", {})
    experiment = base.registered_experiments()["federated"]
    context = base.ExperimentContext(data=load_digits(), seed=0, epochs=40)
    fedsgd = experiment.variants["fedsgd_iid"](context)
    fedavg = experiment.variants["fedavg_e5_b10_iid"](context)
    gossip = experiment.variants["gossip_torus"](context)

    sgd_rounds = fedsgd.extra["rounds_to_target"]
    avg_rounds = fedavg.extra["rounds_to_target"]
    assert len(fedsgd.val_curve) == sgd_rounds and fedsgd.val_curve[-1] >= 0.6
    assert fedavg.extra["speedup"] == pytest.approx(sgd_rounds / avg_rounds)
    assert avg_rounds < sgd_rounds  # local epochs save rounds on IID data
    assert (fedsgd.extra["paper_speedup"], fedavg.extra["paper_speedup"]) == (1.0, 31.3)
    # 4 of 20 clients per round, the model sent down and back up.
    params = 64 * 64 + 64 + 64 * 10 + 10
    assert fedavg.extra["MB_to_target"] == pytest.approx(avg_rounds * 2 * 4 * params * 4 / 1e6)
    assert gossip.extra["consensus_distance"] >= 0
    assert np.isfinite(gossip.extra["rounds_to_target"]) or len(gossip.val_curve) == 8
