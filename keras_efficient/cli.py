"""`keras-efficient demo | run CONFIG | bench | info`."""

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text}")
    return value


def _run_and_report(experiments, data, settings, out_dir, command):
    from keras_efficient import distribute
    from keras_efficient.experiments.report import write_report
    from keras_efficient.experiments.runner import run_experiment

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
    from keras_efficient.experiments.base import registered_experiments

    available = registered_experiments()
    unknown = [name for name in names if name not in available]
    if unknown:
        raise SystemExit(f"keras-efficient: unknown experiment(s) {unknown}; available: "
                         f"{list(available)}")
    return [available[name] for name in (names or available)]


def demo(args):
    from keras_efficient.data import load_digits
    from keras_efficient.experiments.runner import RunSettings

    if args.list:
        for experiment in _select([]):
            study = " [--full]" if experiment.full_only else ""
            print(f"{experiment.name}: {experiment.title}{study}")
        return 0
    experiments = _select(args.only.split(",") if args.only else [])
    if not (args.full or args.only):
        experiments = [experiment for experiment in experiments if not experiment.full_only]
    seeds = tuple(range(args.seeds or (2 if args.quick else 3)))
    settings = RunSettings(seeds=seeds, quick=args.quick, epochs=args.epochs)
    command = "keras-efficient " + " ".join(sys.argv[1:]) if sys.argv[1:] else "demo"
    return _run_and_report(experiments, load_digits(), settings, args.out, command)


def run(args):
    import keras

    from keras_efficient import config as config_module
    from keras_efficient import distribute
    from keras_efficient.data import load_digits
    from keras_efficient.experiments.runner import RunSettings

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
    from keras_efficient.benchmarking import main as bench_main

    return bench_main(args.bench_args)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-efficient",
        description="Advanced learning techniques for Keras 3, measured on real data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser(
        "demo", help="run every technique against its baseline on the embedded digits")
    demo_parser.add_argument("--quick", action="store_true",
                             help="a smoke run: a quarter of the epochs, two seeds")
    demo_parser.add_argument("--out", default="demo_report", help="report folder")
    demo_parser.add_argument("--only", default=None,
                             help="comma-separated experiment names")
    demo_parser.add_argument("--seeds", type=_positive_int, default=None,
                             help="number of seeds")
    demo_parser.add_argument("--epochs", type=_positive_int, default=None,
                             help="override every experiment's epochs")
    demo_parser.add_argument("--full", action="store_true",
                             help="also run the longer studies (outside the 10-minute budget)")
    demo_parser.add_argument("--list", action="store_true", help="list experiments and exit")
    demo_parser.set_defaults(handler=demo)

    run_parser = commands.add_parser("run", help="run one YAML experiment config")
    run_parser.add_argument("config", help="path of the YAML config (see tpu_configs/)")
    run_parser.add_argument("--out", default="run_report", help="report folder")
    run_parser.set_defaults(handler=run)

    bench_parser = commands.add_parser(
        "bench", help="ratio benchmarks (arguments as `python -m benchmarks --help`)",
        add_help=False)
    bench_parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench_parser.set_defaults(handler=bench)

    info_parser = commands.add_parser(
        "info", help="backend, versions, devices, chosen strategy and XLA choice")
    info_parser.add_argument("--strategy", default="auto", help="strategy kind to explain")
    info_parser.add_argument("--tpu", default=None, help="TPU name or address")
    info_parser.set_defaults(handler=info)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
