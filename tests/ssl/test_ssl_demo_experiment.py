"""The `ssl` / `ssl_1pct` demo experiments, run end to end on a few digits."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_efficient.data import few_label_subset
from keras_efficient.data import load_digits
from keras_efficient.demo import base
from keras_efficient.demo.experiments import ssl
from keras_efficient.demo.report import experiment_table
from keras_efficient.demo.report import write_report
from keras_efficient.demo.runner import RunSettings
from keras_efficient.demo.runner import run_experiment

METHODS = ("simclr", "byol", "simsiam", "rotation", "vae")
RUN = ("simclr", "rotation", "vae")  # run end to end: joint embedding, pretext, generative


@pytest.fixture(scope="module")
def tiny_run():
    """`ssl_1pct` (SimCLR and rotation) for one seed, then their 10% probes, on
    300 + 100 digits, with one pre-training epoch: fresh caches, restored afterwards."""
    digits = load_digits()
    data = dataclasses.replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_test=digits.x_test[:100], y_test=digits.y_test[:100])
    experiments = base.registered_experiments()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ssl, "_PRETRAINED", {})
        patch.setattr(ssl, "_PROBES", {})
        patch.setattr(ssl, "QUICK_PRETRAIN_EPOCHS", 1)
        patch.setattr(ssl, "PROBE_STEPS", 5)
        runs = {}
        for name, kinds in (("ssl_1pct", ("probe", "finetune")), ("ssl", ("probe",))):
            settings = RunSettings(seeds=(0,), quick=True, epochs=2,
                                   variants=tuple(f"{m}_{kind}" for m in RUN for kind in kinds))
            runs[name] = run_experiment(experiments[name], data, settings, log=lambda _: None)
        yield {"data": data, "few": runs["ssl_1pct"], "probes_10": runs["ssl"],
               "pretrained": dict(ssl._PRETRAINED), "probes": dict(ssl._PROBES)}


def _context(tiny_run, seed=0):
    return base.ExperimentContext(data=tiny_run["data"], seed=seed, epochs=2,
                                  settings=base.RunSettings(quick=True))


def test_experiments__both_fractions_have_probe_and_finetune_per_method():
    experiments = base.registered_experiments()
    expected = ["supervised"] + [f"{m}_{kind}" for m in METHODS for kind in ("probe", "finetune")]
    for name, fraction in (("ssl", "10%"), ("ssl_1pct", "1%")):
        assert list(experiments[name].variants) == expected
        assert experiments[name].baseline == "supervised"
        assert experiments[name].title.endswith(f"{fraction} of labels")


def test_pretraining__once_per_method_for_both_fractions(tiny_run):
    assert sorted(key[0] for key in tiny_run["pretrained"]) == sorted(RUN)
    # One probe per method, fraction and seed.
    assert sorted((key[0], key[-2]) for key in tiny_run["probes"]) == sorted(
        (m, f) for m in RUN for f in (0.01, 0.1))
    # The initialization pre-training started from (same seed, same builder).
    keras.utils.set_random_seed(ssl.PRETRAIN_SEED)
    fresh = ssl._encoder(_context(tiny_run))
    for method, pretrained in ((k[0], v) for k, v in tiny_run["pretrained"].items()):
        # The encoder was trained (weights differ from its initialization)...
        changed = [not np.allclose(a, b) for a, b in
                   zip(pretrained["weights"], fresh.get_weights(), strict=True)]
        assert all(changed), method
        # ...and the joint-embedding models and the VAE report their collapse metric.
        assert ("embedding_std" in pretrained["extra"]) == (method == "simclr")
        assert ("active_units" in pretrained["extra"]) == (method == "vae")


def test_probe_variant__reports_linear_classifier_on_frozen_features(tiny_run):
    data = tiny_run["data"]
    rows = {v.name: v for v in tiny_run["few"].variants}
    for key, probe in tiny_run["probes"].items():
        method, fraction = key[0], key[3]
        if fraction != 0.01:
            continue
        encoder = ssl._encoder(_context(tiny_run))
        encoder.set_weights(tiny_run["pretrained"][key[:3]]["weights"])
        features = np.asarray(encoder.predict(data.x_test, verbose=0), np.float64)
        kernel, bias = (np.asarray(w, np.float64) for w in probe["head"])
        expected = np.mean(np.argmax(features @ kernel + bias, axis=-1) == data.y_test)
        assert rows[f"{method}_probe"].accuracies == [pytest.approx(expected, abs=1e-9)]


def test_finetune_variant__same_result_whether_or_not_the_probe_was_cached(tiny_run):
    finetuned = {v.name: v for v in tiny_run["few"].variants}["simclr_finetune"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ssl, "_PRETRAINED", dict(tiny_run["pretrained"]))
        patch.setattr(ssl, "_PROBES", {})  # the fine-tune variant trains its own probe
        patch.setattr(ssl, "PROBE_STEPS", 5)
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        result = base.registered_experiments()["ssl_1pct"].variants["simclr_finetune"](
            _context(tiny_run))
    np.testing.assert_allclose(result.val_curve, finetuned.curves[0], atol=1e-9)


def test_report_table__shows_probe_and_finetune_rows_and_knn_per_fraction(tiny_run):
    few_table = experiment_table(tiny_run["few"])
    for method in RUN:
        assert f"| {method}_probe | " in few_table and f"| {method}_finetune | " in few_table
    # 1% keeps one label per class: a 1-NN vote; with more, up to 5 neighbours.
    assert "knn_1" in few_table and "knn_5" not in few_table
    data = tiny_run["data"]
    _, y_10 = few_label_subset(data.x_train, data.y_train, 0.1, seed=0)
    assert f"knn_{min(5, np.bincount(y_10).min())} |" in experiment_table(tiny_run["probes_10"])
    # The probe has no learning curve; the fine-tuned model one point per epoch.
    rows = {v.name: v for v in tiny_run["few"].variants}
    assert rows["simclr_probe"].curves == [[]] and len(rows["simclr_finetune"].curves[0]) == 2


def test_vae_pictures__test_digits_reconstructions_and_samples_in_the_report(tiny_run, tmp_path):
    vae_key = next(key for key in tiny_run["pretrained"] if key[0] == "vae")
    pictures = tiny_run["pretrained"][vae_key]["pictures"]
    side = tiny_run["data"].x_test.shape[1]
    assert pictures.shape == (6 * side, 10 * side)
    # Rows 1-2: the first 20 test digits as they are; rows 3-6: probabilities.
    np.testing.assert_array_equal(pictures[:side, :side], tiny_run["data"].x_test[0, ..., 0])
    assert np.all((pictures[2 * side:] > 0) & (pictures[2 * side:] < 1))
    report = write_report([tiny_run["probes_10"]], tmp_path, "test", [], 1.0).read_text()
    assert "(plots/vae_digits.png)" in report
    assert (tmp_path / "plots" / "vae_digits.png").stat().st_size > 0
