"""The demo's validation split, choices made on it, verdicts against the baseline,
and figure titles that fit."""

import dataclasses

import numpy as np
import pytest

from keras_efficient.data import load_digits
from keras_efficient.demo import base
from keras_efficient.demo import report
from keras_efficient.demo.runner import ExperimentSummary
from keras_efficient.demo.runner import VariantSummary


def _rows(images):
    return sorted(map(bytes, images.reshape(len(images), -1)))


def test_with_validation__stratified_disjoint_and_reproducible():
    data = load_digits()
    split = base.with_validation(data)
    # Disjoint and complete: train and validation together are the old training part.
    assert len(split.y_train) + len(split.y_val) == len(data.y_train)
    assert _rows(np.concatenate([split.x_train, split.x_val])) == _rows(data.x_train)
    # Stratified: every class has the same share of validation, to one example.
    for label in range(10):
        expected = base.VALIDATION_FRACTION * np.sum(data.y_train == label)
        assert abs(np.sum(split.y_val == label) - expected) <= 1
    # The test split is untouched.
    assert split.x_test is data.x_test and split.y_test is data.y_test
    # Seeded: a fresh copy of the data splits the same way, another seed differently.
    again = base.with_validation(load_digits())
    np.testing.assert_array_equal(again.x_val, split.x_val)
    other = base.with_validation(load_digits(), seed=1)
    assert not np.array_equal(other.y_val, split.y_val)
    # Idempotent, and applied to every context.
    assert base.with_validation(split) is split
    assert base.ExperimentContext(data=data, seed=0, epochs=1).data is split


def test_choose_on_validation__picks_best_validation_without_the_test_split():
    context = base.ExperimentContext(data=load_digits(), seed=3, epochs=1)
    seen = []

    def run(selection, candidate):
        seen.append((selection.data.x_test, selection.data.y_test, selection.seed))
        return base.RunResult(float("nan"), [], 0.0, val_accuracy={"a": 0.5, "b": 0.9,
                                                                  "c": 0.7}[candidate])

    best, scores = base.choose_on_validation(context, ["a", "b", "c"], run)
    assert best == "b" and scores == {"a": 0.5, "b": 0.9, "c": 0.7}
    assert seen == [(None, None, 3)] * 3
    assert context.data.x_test is not None  # the run's own context keeps its test split


def test_chosen_once__selects_with_seed_zero_once_for_every_seed(monkeypatch):
    monkeypatch.setattr(base, "_CHOICES", {})
    data = load_digits()
    calls = []

    def build(candidate):
        def variant(context):
            calls.append((candidate, context.seed, context.data.x_test is None))
            return base.RunResult(float("nan"), [], 0.0, val_accuracy=candidate)

        return variant

    for seed in (1, 2):
        context = base.ExperimentContext(data=data, seed=seed, epochs=1)
        assert base.chosen_once(context, "x", (0.2, 0.6, 0.4), build) == 0.6
    assert calls == [(0.2, 0, True), (0.6, 0, True), (0.4, 0, True)]


def test_distillation_grouped__selection_context_without_test_split():
    from keras_efficient.demo.experiments import distillation

    context = base.without_test(base.ExperimentContext(data=load_digits(), seed=0, epochs=1))
    grouped = distillation._grouped(context).data
    assert grouped.y_test is None and set(np.unique(grouped.y_val)) == {0, 1}


@pytest.mark.tensorflow_only("cost: the data flow checked here does not depend on the "
                             "backend, and JAX compiles the SAM step for ~50 s")
def test_looksam_variant__reads_the_test_split_once_after_choosing_alpha(monkeypatch):
    from keras_efficient.demo.experiments import sam

    data = base.with_validation(load_digits())
    # A small training part keeps three SAM fits cheap; the spy sees every evaluation.
    data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
    reads = []
    accuracy_of = base.accuracy_of

    def spy(model, x, y, **kwargs):
        reads.append("test" if x is data.x_test else "validation" if x is data.x_val
                     else "other")
        return accuracy_of(model, x, y, **kwargs)

    monkeypatch.setattr(base, "accuracy_of", spy)
    monkeypatch.setattr(sam, "LOOKSAM_ALPHAS", (0.3,))
    monkeypatch.setattr(base, "_CHOICES", {})
    context = base.ExperimentContext(data=data, seed=0, epochs=1)
    result = sam._looksam_chosen_on_validation(context)
    # The selection fit (validation curve, noisy-label fit on training examples),
    # then the chosen fit, whose test accuracy is read once, after training.
    assert reads == ["validation", "other", "validation", "test", "other"]
    assert result.extra["looksam_alpha"] == 0.3
    assert 0.0 <= result.test_accuracy <= 1.0


def _t_test_p_value_df2(differences):
    """Two-sided p of the paired t-test for 3 seeds in float64: Student's t with
    2 degrees of freedom has the closed-form CDF 1/2 + t / (2 sqrt(2 + t^2))."""
    d = np.asarray(differences, dtype="float64")
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    return 1.0 - abs(t) / np.sqrt(2.0 + t * t)


@pytest.mark.parametrize("baseline, variant, verdict", [
    ([0.90, 0.92, 0.91], [0.95, 0.96, 0.955], report.HELPED),
    ([0.90, 0.92, 0.91], [0.80, 0.83, 0.815], report.HURT),
    ([0.90, 0.92, 0.91], [0.93, 0.89, 0.92], report.NO_EFFECT),
    ([0.90, 0.92, 0.91], [0.90, 0.92, 0.91], report.NO_EFFECT),
    ([0.90, 0.92, 0.91], [0.91, 0.93, 0.92], report.HELPED),  # same gain on every seed
    ([0.90], [0.99], report.UNTESTED),
])
def test_compare_to_baseline__classifies_made_up_seeds(baseline, variant, verdict):
    got, difference, p_value = report.compare_to_baseline(baseline, variant)
    assert got == verdict
    assert difference == pytest.approx(np.mean(variant) - np.mean(baseline))
    differences = np.subtract(variant, baseline)
    if len(baseline) == 3 and np.ptp(differences) > 0:
        assert p_value == pytest.approx(_t_test_p_value_df2(differences), rel=1e-9)


def test_compare_to_baseline__mismatched_seeds_is_an_error():
    with pytest.raises(ValueError, match="argument `accuracies`"):
        report.compare_to_baseline([0.9, 0.8], [0.9])


def _summary(title="Fake", accuracies=None):
    accuracies = accuracies or {"plain": [0.90, 0.92, 0.91], "technique": [0.95, 0.96, 0.955]}
    variants = [VariantSummary(name, values, [0.01] * 3, [[0.5, value] for value in values],
                               {}, 1.0) for name, values in accuracies.items()]
    return ExperimentSummary("fake", title, "Made-up numbers.", "plain", 2, [0, 1, 2],
                             variants)


def test_write_report__ends_each_section_with_the_claims_verdict(tmp_path):
    claim = base.Claim("the technique helps", "technique", why_held="it is made up",
                       why_not="never")
    path = report.write_report([_summary()], tmp_path, "test", ["machine"], 1.0,
                               claims={"fake": claim})
    text = path.read_text()
    section = text.split("## fake", 1)[1].split("## Machine")[0].strip()
    assert section.splitlines()[-1].startswith(
        "**Verdict.** The claim that the technique helps held here: technique helped vs plain "
        "(+4.50 points")
    assert section.endswith("; it is made up.")
    assert "| [fake](#fake) | plain (91.00%) | technique | 95.50% | +4.50 | technique | – | – |" \
        in text
    hurt = _summary(accuracies={"plain": [0.90, 0.92, 0.91], "technique": [0.80, 0.83, 0.815]})
    assert "did not hold here: technique hurt vs plain" in report.conclusion(hurt, claim)
    assert report.conclusion(hurt, None).endswith("against plain: technique hurt.")
    noisy = _summary(accuracies={"plain": [0.90, 0.92, 0.91], "technique": [0.93, 0.89, 0.92]})
    no_loss = dataclasses.replace(claim, holds_if=(report.HELPED, report.NO_EFFECT))
    assert "was not contradicted here: technique no effect within noise" in report.conclusion(
        noisy, no_loss)


def test_curves_figure__every_experiments_title_fits_the_figure():
    import matplotlib.pyplot as plt

    titles = [experiment.title for experiment in base.registered_experiments().values()]
    assert any(len(title) > report.TITLE_WIDTH for title in titles)  # wrapping is exercised
    for title in titles:
        figure = report.curves_figure(_summary(title))
        figure.canvas.draw()
        box = figure.axes[0].title.get_window_extent(figure.canvas.get_renderer())
        inside = figure.bbox
        plt.close(figure)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1, title


def test_demo_command__studies_run_only_with_full(monkeypatch):
    from keras_efficient import cli
    from keras_efficient.demo import runner

    ran = []
    monkeypatch.setattr(runner, "run_and_report",
                        lambda experiments, *args: ran.append([e.name for e in experiments]))
    cli.main(["demo"])
    cli.main(["demo", "--full"])
    cli.main(["demo", "--only", "sam_noise_40"])
    studies = [name for name, e in base.registered_experiments().items() if e.full_only]
    assert {"sam_noise_40", "stochastic_depth_frontier", "ssl", "ssl_1pct"} <= set(studies)
    assert not set(studies) & set(ran[0]) and "sam" in ran[0]
    assert ran[1] == list(base.registered_experiments())
    assert ran[2] == ["sam_noise_40"]


def test_steady_train_seconds__median_step_per_size_times_its_steps():
    from keras_efficient.demo.experiments.curriculum import steady_train_seconds

    # Each size's first step traces (5 s, 3 s); the steady steps take 1 s and 2 s.
    seconds = [5.0, 1.0, 1.0, 1.0, 3.0, 2.0, 2.0, 2.0]
    sizes = [(8, 8)] * 4 + [(16, 16)] * 4
    assert steady_train_seconds(seconds, sizes) == pytest.approx(4 * 1.0 + 4 * 2.0)
    assert steady_train_seconds([4.0, 1.0, 1.0], [None] * 3) == pytest.approx(3.0)
