"""The commands of `keras-efficient` (parsed in `keras_efficient_cli`, which lists
experiments and benchmarks without importing this package)."""

import sys

from keras_efficient_cli import main


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
    from keras_efficient.demo.runner import run_and_report

    experiments = _select(args.only.split(",") if args.only else [])
    if not (args.full or args.only):
        experiments = [experiment for experiment in experiments if not experiment.full_only]
    seeds = tuple(range(args.seeds or (2 if args.quick else 3)))
    settings = RunSettings(seeds=seeds, quick=args.quick, epochs=args.epochs)
    command = "keras-efficient " + " ".join(sys.argv[1:]) if sys.argv[1:] else "demo"
    return run_and_report(experiments, load_digits(), settings, args.out, command)


def run(args):
    from keras_efficient import config

    return config.run(config.load(args.config), args.out)


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
    return run_benchmarks(args.names, args.out, args.rounds, args.dir, args.processes,
                          args.warmup, args.backends)


if __name__ == "__main__":
    sys.exit(main())
