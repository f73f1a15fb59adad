"""The `few_shot` / `few_shot_5shot` demo experiments, run end to end in a tiny setting."""

import keras
import numpy as np
import pytest

from keras_efficient.data import episode_dataset
from keras_efficient.data import load_digits
from keras_efficient.demo import base
from keras_efficient.demo.experiments import few_shot
from keras_efficient.demo.report import experiment_table
from keras_efficient.demo.runner import RunSettings
from keras_efficient.demo.runner import run_experiment
from keras_efficient.models import TransferBaseline
from keras_efficient.models import evaluate_episodes

RUN = ("transfer", "prototypical", "triplet")


@pytest.fixture(scope="module")
def tiny_run():
    """Both experiments for one seed, 2 x 2 training steps, 10 test episodes each."""
    data = load_digits()
    experiments = base.registered_experiments()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(few_shot, "_TRAINED", {})
        patch.setattr(few_shot, "STEPS_PER_EPOCH", 2)
        patch.setattr(few_shot, "QUICK_TEST_EPISODES", 10)
        settings = RunSettings(seeds=(0,), quick=True, epochs=2, variants=RUN)
        runs = {name: run_experiment(experiments[name], data, settings, log=lambda _: None)
                for name in few_shot.SHOTS}
        yield {"data": data, "runs": runs, "trained": dict(few_shot._TRAINED)}


def test_experiments__every_method_against_the_transfer_baseline():
    experiments = base.registered_experiments()
    for name, shots in (("few_shot", 1), ("few_shot_5shot", 5)):
        assert list(experiments[name].variants) == list(few_shot.VARIANTS)
        assert experiments[name].baseline == "transfer"
        assert f"5-way {shots}-shot" in experiments[name].title


def test_methods__trained_once_per_seed_for_both_settings(tiny_run):
    assert sorted(key[0] for key in tiny_run["trained"]) == [
        "prototypical", "transfer_linear", "triplet"]
    keras.utils.set_random_seed(0)
    fresh = few_shot._encoder(base.ExperimentContext(data=tiny_run["data"], seed=0, epochs=2))
    for make_scored, _ in tiny_run["trained"].values():
        trained = make_scored().encoder.get_weights()
        assert any(not np.allclose(a, b) for a, b in zip(trained, fresh.get_weights()))


def test_transfer_variant__reports_evaluate_episodes_of_the_pretrained_encoder(tiny_run):
    make_scored, _ = tiny_run["trained"][("transfer_linear", 0, 4)]
    encoder = make_scored().encoder
    x, y = few_shot._split("test")
    for name, shots in few_shot.SHOTS.items():
        episodes = episode_dataset(x, y, 5, shots, 15, 10, num_episodes=10, seed=1000)
        expected = evaluate_episodes(TransferBaseline(encoder, seed=0), episodes, 10)
        row = tiny_run["runs"][name].variant("transfer")
        assert row.accuracies == [pytest.approx(expected.mean, abs=1e-9)]
        assert row.extra["ci95_pct"] == [
            pytest.approx(100 * expected.confidence_interval, abs=1e-7)]


def test_report_table__accuracy_and_confidence_interval_per_method(tiny_run):
    for summary in tiny_run["runs"].values():
        table = experiment_table(summary)
        assert "ci95_pct" in table
        for name in RUN:
            assert f"| {name} | " in table
            assert 0.0 <= summary.variant(name).accuracy_mean <= 1.0
