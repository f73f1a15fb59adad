"""The commands of `keras-efficient` (parsed in `keras_efficient_cli`, which lists
experiments and benchmarks without importing this package)."""

import sys
import time

from keras_efficient_cli import main


def _run_and_report(experiments, data, settings, out_dir, command):
    from keras_efficient import distribute
    from keras_efficient.demo.report import write_report
    from keras_efficient.demo.runner import run_experiment

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


def _select(names):
    from keras_efficient.demo.base import registered_experiments

    available = registered_experiments()
    unknown = [name for name in names if name not in available]
    if unknown:
        raise SystemExit(f"keras-efficient: unknown experiment(s) {unknown}; available: "
                         f"{list(available)}")
    return [available[name] for name in (names or available)]


def demo(args):
    from keras_efficient.data import load_digits
    from keras_efficient.demo.runner import RunSettings

    experiments = _select(args.only.split(",") if args.only else [])
    seeds = tuple(range(args.seeds or (2 if args.quick else 3)))
    settings = RunSettings(seeds=seeds, quick=args.quick, epochs=args.epochs)
    command = "keras-efficient " + " ".join(sys.argv[1:]) if sys.argv[1:] else "demo"
    return _run_and_report(experiments, load_digits(), settings, args.out, command)


def run(args):
    import keras

    from keras_efficient import config as config_module
    from keras_efficient import distribute
    from keras_efficient.data import load_digits
    from keras_efficient.demo.runner import RunSettings

    config = config_module.load(args.config)
    runtime, trainer, task = config.runtime, config.trainer, config.task
    if task["technique"] == "bert_agnews":
        # The book's BERT project: its own data (AG News) and report.
        from keras_efficient.recipes.bert.run import run_config

        return run_config(config, args.out)
    (experiment,) = _select([task["technique"]])
    if task["dataset"] != "digits":
        raise config_module.ConfigError(
            f"{config.path}: key `task.dataset` must be 'digits' for technique "
            f"{task['technique']!r}; received {task['dataset']!r}.")
    unknown = [v for v in task["variants"] or [] if v not in experiment.variants]
    if unknown:
        raise config_module.ConfigError(
            f"{config.path}: key `task.variants` names unknown variants {unknown}; "
            f"{task['technique']!r} has {list(experiment.variants)}.")
    keras.config.set_dtype_policy(runtime["mixed_precision"])
    strategy = distribute.get_strategy(runtime["strategy"], runtime["tpu"])
    recommended = distribute.recommended_settings(strategy)
    try:
        recommended.check_batch_size(trainer["batch_size"])
    except ValueError as error:
        raise config_module.ConfigError(f"{config.path}: key `trainer.batch_size`: {error}")
    jit = runtime["jit_compile"]
    settings = RunSettings(
        seeds=tuple(trainer["seeds"]), epochs=trainer["epochs"],
        batch_size=trainer["batch_size"],
        variants=tuple(task["variants"]) if task["variants"] else None,
        strategy=strategy,
        jit_compile=distribute.jit_compile_for(strategy) if jit == "auto" else jit,
        steps_per_execution=runtime["steps_per_execution"], params=task["params"],
        optimizer=trainer["optimizer"], learning_rate=float(trainer["learning_rate"]),
        drop_remainder=recommended.drop_remainder,
    )
    data = load_digits(image_size=task["image_size"])
    return _run_and_report([experiment], data, settings, args.out,
                           f"keras-efficient run {args.config}")


def info(args):
    from keras_efficient import distribute

    print(distribute.format_description(distribute.describe(args.strategy, args.tpu)))
    return 0


def bench(args):
    from keras_efficient.bench.base import discover
    from keras_efficient.bench.base import run_benchmarks

    if args.list:
        for name, benchmark in discover(args.dir).items():
            print(f"{name}: {benchmark.description}")
        return 0
    return run_benchmarks(args.names, args.out, args.rounds, args.dir)


if __name__ == "__main__":
    sys.exit(main())
