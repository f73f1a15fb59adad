"""Settings travel one way: config -> `RunSettings.from_config` -> the experiment's
context; every key reaches what it configures or is an error naming it."""

import dataclasses

import keras
import pytest

from keras_efficient import config
from keras_efficient.data import load_digits
from keras_efficient.demo.base import ExperimentContext
from keras_efficient.demo.base import RunSettings
from keras_efficient.demo.base import registered_experiments

EXPERIMENTS = registered_experiments()
BASELINE = EXPERIMENTS["baseline"]

# The audit of every config key against every experiment: the keys that some training
# an experiment measures does not follow. Every other key reaches what it configures.
NOT_HONOURED = {
    "baseline": set(),
    "curriculum": set(),
    "curriculum_tight_budget": set(),
    "progressive_resizing": {"task.image_size"},  # its own 16x16 digits
    "distillation": set(),
    "distillation_tuned": set(),
    "federated": {"trainer.batch_size", "runtime.jit_compile", "runtime.steps_per_execution"},
    "few_shot": {"trainer.batch_size", "task.image_size"},  # rotated digits at 8x8
    "few_shot_5shot": {"trainer.batch_size", "task.image_size"},
    "in_context": {"trainer.epochs", "trainer.batch_size", "runtime.jit_compile",
                   "runtime.steps_per_execution", "task.image_size"},  # no digits
    "soft_targets": set(),
    "sam": set(),
    "sam_noise_20": set(),
    "sam_noise_40": set(),
    "ssl_core": {"trainer.batch_size", "trainer.epochs"},
    "ssl": {"trainer.batch_size", "trainer.epochs"},  # pre-training's own
    "ssl_1pct": {"trainer.batch_size", "trainer.epochs"},
    "stochastic_depth": set(),
    "stochastic_depth_frontier": {"trainer.epochs"},  # each variant's own schedule
}
# A valid value other than the default for each key an experiment may not honour.
NON_DEFAULT = {"runtime.jit_compile": False, "runtime.steps_per_execution": 2,
               "trainer.epochs": 3, "trainer.batch_size": 32, "task.image_size": 16}


def _config(**blocks):
    return config.validate(blocks, source="c.yaml")


def test_run_settings__from_config_carries_every_trainer_runtime_and_task_key():
    settings = RunSettings.from_config(_config(
        runtime={"strategy": "cpu", "jit_compile": False, "steps_per_execution": 4},
        trainer={"optimizer": "sgd", "learning_rate": 0.05, "epochs": 3, "batch_size": 32,
                 "seeds": [4, 5]},
        task={"technique": "baseline", "variants": ["mlp"]}), BASELINE)
    assert (settings.seeds, settings.epochs, settings.batch_size, settings.variants) == (
        (4, 5), 3, 32, ("mlp",))
    assert (settings.jit_compile, settings.steps_per_execution) == (False, 4)
    assert (settings.optimizer, settings.learning_rate) == ("sgd", 0.05)
    assert type(settings.strategy).__name__ == "OneDeviceStrategy"


def test_run_settings__default_config_leaves_the_experiments_own_optimizer_and_budget():
    settings = RunSettings.from_config(_config(runtime={"strategy": "cpu"}), BASELINE)
    assert (settings.optimizer, settings.learning_rate, settings.epochs) == (None, None, None)


@pytest.mark.parametrize("blocks, key", [
    ({"task": {"params": {"rate": 0.1}}}, "task.params"),
    ({"task": {"variants": ["resnet"]}}, "task.variants"),
])
def test_run_settings__key_that_cannot_apply_is_an_error_naming_it(blocks, key):
    with pytest.raises(config.ConfigError, match=rf"c\.yaml.*`{key}`"):
        RunSettings.from_config(_config(runtime={"strategy": "cpu"}, **blocks), BASELINE)


@pytest.mark.parametrize("blocks, key", [
    ({"task": {"technique": "bert_agnews"}}, "task.technique"),  # its dataset is ag_news
    ({"task": {"technique": "nope"}}, "task.technique"),
    ({"task": {"technique": "bert_agnews", "dataset": "ag_news"},
      "trainer": {"learning_rate": 1e-4}}, "trainer.learning_rate"),
    ({"task": {"technique": "bert_agnews", "dataset": "ag_news"},
      "trainer": {"optimizer": "sgd"}}, "trainer.optimizer"),
    ({"task": {"dataset": "imagenet"}}, "task.dataset"),
])
def test_config_run__key_that_cannot_apply_is_an_error_naming_it(tmp_path, blocks, key):
    with pytest.raises(config.ConfigError, match=rf"c\.yaml.*`{key}`"):
        config.run(_config(**blocks), tmp_path)


def test_make_optimizer__settings_override_the_experiments_own_choice():
    context = ExperimentContext(data=None, seed=0, epochs=1)
    own = context.make_optimizer(2e-3)
    assert isinstance(own, keras.optimizers.Adam)
    assert float(own.learning_rate) == pytest.approx(2e-3)
    context = ExperimentContext(data=None, seed=0, epochs=1,
                                settings=RunSettings(optimizer="sgd", learning_rate=0.05))
    chosen = context.make_optimizer(2e-3)
    assert isinstance(chosen, keras.optimizers.SGD)
    assert float(chosen.learning_rate) == pytest.approx(0.05)


class _Fitting(Exception):
    """Raised by `fit` with the model's optimizer: what the variant compiled."""


# The experiments that hard-coded Adam; the default settings keep their own rates.
@pytest.mark.parametrize("experiment, variant, own_rate", [
    ("stochastic_depth", "stochastic_depth", 2e-3),
    ("ssl", "simclr_probe", 1e-3),
])
@pytest.mark.parametrize("settings", [
    RunSettings(quick=True), RunSettings(quick=True, optimizer="sgd", learning_rate=0.05)],
    ids=["own", "configured"])
def test_trainer_optimizer__reaches_the_experiments_compile(monkeypatch, experiment, variant,
                                                            own_rate, settings):
    def fit(model, *args, **kwargs):
        raise _Fitting(model.optimizer)

    monkeypatch.setattr(keras.Model, "fit", fit)
    run = registered_experiments()[experiment].variants[variant]
    with pytest.raises(_Fitting) as fitting:
        run(ExperimentContext(data=load_digits(), seed=0, epochs=1, settings=settings))
    optimizer = fitting.value.args[0]
    assert type(optimizer) is type(keras.optimizers.get(settings.optimizer or "adam"))
    assert float(optimizer.learning_rate) == pytest.approx(settings.learning_rate or own_rate)


def _setting(key, value, technique):
    block, name = key.split(".")
    blocks = {"runtime": {"strategy": "cpu"}, "task": {"technique": technique}}
    blocks.setdefault(block, {})[name] = value
    return _config(**blocks)


def test_experiment__ignored_settings_match_the_audit_of_every_experiment():
    # A new experiment fails here until its keys are audited and declared.
    declared = {name: set(experiment.ignored_settings)
                for name, experiment in EXPERIMENTS.items()}
    assert declared == NOT_HONOURED
    assert set().union(*declared.values()) <= set(NON_DEFAULT)


@pytest.mark.parametrize("name, key", [
    (name, key) for name, experiment in EXPERIMENTS.items()
    for key in experiment.ignored_settings])
def test_run_settings__key_an_experiment_does_not_honour_is_an_error_naming_it(name, key):
    with pytest.raises(config.ConfigError, match=rf"c\.yaml: key `{key}` .* {name!r} \("):
        RunSettings.from_config(_setting(key, NON_DEFAULT[key], name), EXPERIMENTS[name])


@pytest.mark.parametrize("name", list(NOT_HONOURED))
def test_run_settings__default_and_honoured_keys_are_accepted(name):
    experiment = EXPERIMENTS[name]
    RunSettings.from_config(_config(runtime={"strategy": "cpu"}, task={"technique": name}),
                            experiment)
    for key in set(NON_DEFAULT) - set(experiment.ignored_settings):
        RunSettings.from_config(_setting(key, NON_DEFAULT[key], name), experiment)


def test_experiment__ignored_setting_that_is_no_config_key_is_an_error():
    with pytest.raises(ValueError, match=r"`ignored_settings`.*\['trainer\.batch'\]"):
        dataclasses.replace(BASELINE, ignored_settings={"trainer.batch": "typo"})


def _first_fit_batch_size(variant, settings, monkeypatch):
    """The batch size of the first `fit` a variant calls (stopped there)."""
    def fit(model, x=None, *args, batch_size=None, **kwargs):
        raise _Fitting(batch_size or keras.tree.flatten(next(iter(x)))[0].shape[0])

    monkeypatch.setattr(keras.Model, "fit", fit)
    with pytest.raises(_Fitting) as fitting:
        variant(ExperimentContext(data=load_digits(), seed=0, epochs=1, settings=settings))
    return fitting.value.args[0]


# An independent check of the audit: where the batch size is declared honoured, the
# first training of every variant gets the configured batches.
# The batches are tf.data pipelines on every backend: checked once, on TensorFlow (the
# curriculum's ExampleStatistics needs it too).
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="backend-independent plumbing, checked on TensorFlow")
@pytest.mark.parametrize("name, variant", [
    (name, variant) for name, keys in NOT_HONOURED.items() if "trainer.batch_size" not in keys
    for variant in EXPERIMENTS[name].variants])
def test_trainer_batch_size__reaches_every_variant_that_honours_it(monkeypatch, name, variant):
    run = EXPERIMENTS[name].variants[variant]
    assert _first_fit_batch_size(run, RunSettings(quick=True, batch_size=32), monkeypatch) == 32
