"""Runs registered experiments over seeds and summarizes them for the report."""

import contextlib
import dataclasses
import time

import keras
import numpy as np

from keras_efficient.demo.base import ExperimentContext
from keras_efficient.demo.base import RunSettings
from keras_efficient.demo.base import registered_experiments


@dataclasses.dataclass
class VariantSummary:
    """One variant of one experiment, aggregated over seeds."""

    name: str
    accuracies: list
    step_seconds: list
    curves: list
    extra: dict
    wall_seconds: float
    # CPU time of this process over the runs (all threads): the demo's budget is
    # estimated from it, since wall time on a shared machine depends on the others.
    cpu_seconds: float = 0.0

    @property
    def accuracy_mean(self):
        return float(np.mean(self.accuracies))

    @property
    def accuracy_std(self):
        return float(np.std(self.accuracies))

    @property
    def step_seconds_median(self):
        return float(np.median(self.step_seconds))


@dataclasses.dataclass
class ExperimentSummary:
    """All variants of one experiment; ratios are against `baseline`."""

    name: str
    title: str
    description: str
    baseline: str
    epochs: int
    seeds: list
    variants: list
    figures: object = None

    def variant(self, name):
        return next(v for v in self.variants if v.name == name)

    def step_ratio(self, name):
        return self.variant(name).step_seconds_median / self.variant(
            self.baseline).step_seconds_median

    def to_json(self):
        return {
            "name": self.name,
            "title": self.title,
            "baseline": self.baseline,
            "epochs": self.epochs,
            "seeds": self.seeds,
            "variants": [
                {
                    "name": v.name,
                    "accuracy_mean": v.accuracy_mean,
                    "accuracy_std": v.accuracy_std,
                    "accuracies": v.accuracies,
                    "step_seconds_median": v.step_seconds_median,
                    "step_ratio": self.step_ratio(v.name),
                    "extra": {k: float(np.mean(vals)) for k, vals in v.extra.items()},
                    "wall_seconds": v.wall_seconds,
                    "cpu_seconds": v.cpu_seconds,
                }
                for v in self.variants
            ],
        }


def _epochs(experiment, settings):
    if settings.epochs is not None:
        return settings.epochs
    return max(2, experiment.epochs // 4) if settings.quick else experiment.epochs


def run_experiment(experiment, data, settings, log=print):
    """Run every variant of `experiment` for every seed; return an `ExperimentSummary`."""
    epochs = _epochs(experiment, settings)
    names = [name for name in experiment.variants
             if settings.variants is None or name in settings.variants
             or name == experiment.baseline]
    summaries = {name: VariantSummary(name, [], [], [], {}, 0.0) for name in names}
    for seed_index, seed in enumerate(settings.seeds, 1):
        for name in names:
            # Timed from here: clearing the session is part of each run's cost.
            start, cpu_start = time.perf_counter(), time.process_time()
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            context = ExperimentContext(data=data, seed=seed, epochs=epochs, settings=settings)
            # A fresh scope per run: a strategy's scope object can be entered only once.
            scope = settings.strategy.scope() if settings.strategy else contextlib.nullcontext()
            with scope:
                result = experiment.variants[name](context)
            elapsed = time.perf_counter() - start
            summary = summaries[name]
            summary.accuracies.append(float(result.test_accuracy))
            summary.step_seconds.append(float(result.step_seconds))
            summary.curves.append(list(result.val_curve))
            for key, value in result.extra.items():
                summary.extra.setdefault(key, []).append(float(value))
            summary.wall_seconds += elapsed
            summary.cpu_seconds += time.process_time() - cpu_start
            log(f"  seed {seed_index}/{len(settings.seeds)}  {name:<24} "
                f"accuracy {result.test_accuracy:.4f}  "
                f"step {result.step_seconds * 1e3:.1f} ms  ({elapsed:.1f}s)")
    return ExperimentSummary(
        name=experiment.name, title=experiment.title, description=experiment.description,
        baseline=experiment.baseline, epochs=epochs, seeds=list(settings.seeds),
        variants=list(summaries.values()), figures=experiment.figures,
    )


def run_and_report(experiments, data, settings, out_dir, command):
    """Run `experiments` with `settings`, printing progress; write the report."""
    from keras_efficient import distribute
    from keras_efficient.demo.report import write_report

    start = time.perf_counter()
    summaries = []
    for index, experiment in enumerate(experiments, 1):
        print(f"[{index}/{len(experiments)}] {experiment.name}: {experiment.title}", flush=True)
        summaries.append(run_experiment(experiment, data, settings,
                                        log=lambda line: print(line, flush=True)))
    machine = distribute.format_description(distribute.describe()).splitlines()
    report = write_report(summaries, out_dir, command, machine, time.perf_counter() - start)
    print(f"Report: {report}")
    return 0


def run_config(config, out_dir):
    """`keras-efficient run CONFIG` for a config on the digits: the demo experiment
    named by `task.technique`, with `RunSettings.from_config(config, experiment)`."""
    from keras_efficient.config import ConfigError
    from keras_efficient.data import load_digits

    experiments = registered_experiments()
    technique = config.task["technique"]
    if technique not in experiments:
        raise ConfigError(f"{config.path}: key `task.technique` must be a demo experiment "
                          f"on the digits, one of {list(experiments)}; received {technique!r}.")
    settings = RunSettings.from_config(config, experiments[technique])
    keras.config.set_dtype_policy(config.runtime["mixed_precision"])
    data = load_digits(image_size=config.task["image_size"])
    return run_and_report([experiments[technique]], data, settings, out_dir,
                          f"keras-efficient run {config.path}")
