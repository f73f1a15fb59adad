"""The demo runner, the report, and the `demo` / `run` commands end to end."""

import json

import numpy as np
import pytest

from keras_efficient.cli import main
from keras_efficient.demo import base
from keras_efficient.demo.report import write_report
from keras_efficient.demo.runner import RunSettings
from keras_efficient.demo.runner import run_experiment


def _fixed(accuracy_by_seed, step_seconds, extra=None):
    def variant(context):
        accuracy = accuracy_by_seed[context.seed]
        return base.RunResult(accuracy, [accuracy / 2, accuracy], step_seconds, extra or {})

    return variant


FAKE = base.Experiment(
    name="fake",
    title="Fake technique",
    description="Fixed numbers.",
    variants={"plain": _fixed({0: 0.80, 1: 0.90}, 0.010),
              "technique": _fixed({0: 0.95, 1: 0.85}, 0.005, {"entropy": 0.5})},
    baseline="plain",
)


def test_run_experiment__aggregates_over_seeds(tmp_path):
    summary = run_experiment(FAKE, data=None, settings=RunSettings(seeds=(0, 1)),
                             log=lambda _: None)
    technique = summary.variant("technique")
    assert technique.accuracy_mean == pytest.approx(0.90)
    assert technique.accuracy_std == pytest.approx(np.std([0.95, 0.85]))
    assert summary.step_ratio("technique") == pytest.approx(0.5)

    report = write_report([summary], tmp_path, "test", ["machine"], 1.0)
    text = report.read_text()
    assert "| technique | 90.00 ± 5.00 | +5.00 | 5.00 | 0.50× | 0.5 |" in text
    assert (tmp_path / "plots" / "fake.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved[0]["variants"][1]["accuracies"] == [0.95, 0.85]


def test_run_experiment__builds_every_run_under_the_strategy():
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    seen = []

    def variant(context):
        seen.append(tf.distribute.get_strategy() is strategy)
        return base.RunResult(0.5, [0.5], 0.01)

    experiment = base.Experiment("s", "t", "d", {"a": variant, "b": variant}, baseline="a")
    run_experiment(experiment, data=None, settings=RunSettings(seeds=(0, 1), strategy=strategy),
                   log=lambda _: None)
    assert seen == [True] * 4


def test_run_experiment__variant_subset_keeps_baseline():
    settings = RunSettings(seeds=(0,), variants=("technique",))
    summary = run_experiment(FAKE, data=None, settings=settings, log=lambda _: None)
    assert [v.name for v in summary.variants] == ["plain", "technique"]


def test_experiment__unknown_baseline_raises():
    with pytest.raises(ValueError, match="argument `baseline`"):
        base.Experiment("x", "t", "d", {"a": None}, baseline="b")


def test_registered_experiments__include_baseline():
    assert "baseline" in base.registered_experiments()


def test_demo_command__writes_report_with_table_and_plot(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["demo", "--only", "baseline", "--quick", "--epochs", "1", "--seeds", "1",
                 "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "| cnn |" in text and "| mlp |" in text and "![learning curves" in text
    assert (out / "plots" / "baseline.png").exists()
    assert "seed 1/1" in capsys.readouterr().out  # progress is shown


@pytest.mark.parametrize("flag", ["--seeds", "--epochs"])
def test_demo_command__non_positive_count_is_an_error(flag, capsys):
    with pytest.raises(SystemExit):
        main(["demo", flag, "0"])
    assert f"argument {flag}: expected an integer >= 1" in capsys.readouterr().err


def test_expected_calibration_error__matches_hand_computed_bins():
    from keras_efficient.demo.experiments.soft_targets import expected_calibration_error

    probabilities = np.array([[0.95, 0.05], [0.85, 0.15], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    # Bin [0.9, 1): one right at 0.95; [0.8, 0.9): one wrong at 0.85;
    # [0.7, 0.8): one right at 0.7; [0.5, 0.6): one wrong at 0.55.
    expected = (0.05 + 0.85 + 0.3 + 0.55) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_demo_command__unknown_experiment_is_an_error():
    with pytest.raises(SystemExit, match="unknown experiment"):
        main(["demo", "--only", "nope"])


def test_run_command__runs_a_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("runtime: {strategy: cpu}\ntrainer: {epochs: 1, seeds: [0]}\n"
                      "task: {technique: baseline, variants: [cnn]}\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [v["name"] for v in results[0]["variants"]] == ["cnn"]


def test_run_command__unknown_variant_names_key(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: {technique: baseline, variants: [resnet]}\n")
    with pytest.raises(ValueError, match=r"c\.yaml.*`task\.variants`.*resnet"):
        main(["run", str(config)])
