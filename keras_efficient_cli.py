"""`keras-efficient demo | run CONFIG | bench | info`: the command line.

This module sits beside the `keras_efficient` package, not in it, because importing
the package imports TensorFlow (it registers every class for `.keras` files).
`--help`, `demo --list` and `bench --list` therefore start in a fraction of a second
and print no TensorFlow log lines: the lists are read from the package's files (the
tables of contents `demo/experiments/__init__.py` and `bench/benchmarks/__init__.py`,
and each module's docstring) without importing them. The commands themselves run
in `keras_efficient.cli`.
"""

import argparse
import ast
import contextlib
import importlib
import importlib.util
import logging
import os
import pathlib
import sys

# Before anything imports TensorFlow, unless the user chose: TF's C++ INFO and
# WARNING lines are noise in a command's output.
_QUIET = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text}")
    return value


def _package_source(*parts):
    # The package's top-level spec is found without running its `__init__`.
    root = importlib.util.find_spec("keras_efficient").submodule_search_locations[0]
    return ast.parse(pathlib.Path(root, *parts).read_text(encoding="utf-8"))


def catalog(folder):
    """{name: summary} of the experiments (`folder="demo/experiments"`) or the
    benchmarks (`"bench/benchmarks"`), in the order of the folder's `MODULES`; the
    summary is the first paragraph of the module's docstring, marked `[--full]` for
    the studies outside the demo's budget (the folder's `STUDIES`)."""
    tables = {node.targets[0].id: ast.literal_eval(node.value)
              for node in _package_source(folder, "__init__.py").body
              if isinstance(node, ast.Assign)}
    studies = tables.get("STUDIES", ())
    listing = {}
    for module, names in tables["MODULES"].items():
        docstring = ast.get_docstring(_package_source(folder, f"{module}.py"))
        summary = docstring.split("\n\n")[0].replace("\n", " ")
        listing.update({name: summary + (" [--full]" if name in studies else "")
                        for name in names})
    return listing


def _list(folder):
    for name, summary in catalog(folder).items():
        print(f"{name}: {summary}")
    return 0


@contextlib.contextmanager
def native_stderr_silenced():
    """Discard what native code writes to file descriptor 2 in the block.

    TensorFlow 2.21 logs its import (oneDNN, the CUDA stub) through absl before
    `TF_CPP_MIN_LOG_LEVEL` applies (tensorflow/tensorflow#100442); a Python error
    raised in the block is still reported, after the descriptor is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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

    run_parser = commands.add_parser("run", help="run one YAML experiment config")
    run_parser.add_argument("config", help="path of the YAML config (see tpu_configs/)")
    run_parser.add_argument("--out", default="run_report", help="report folder")

    bench_parser = commands.add_parser(
        "bench", help="time techniques against their baselines and peers, side by side")
    bench_parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    bench_parser.add_argument("--out", default="bench_results", help="folder for JSON results")
    bench_parser.add_argument("--rounds", type=_positive_int, default=None,
                              help="timed rounds per case")
    bench_parser.add_argument("--dir", default=None,
                              help="folder of benchmark modules to run instead of the package's")
    bench_parser.add_argument("--warmup", type=int, default=None,
                              help="untimed calls per case first (default: each benchmark's)")
    bench_parser.add_argument("--backends", nargs="+", default=None,
                              choices=("tensorflow", "jax"),
                              help="run the benchmarks once per Keras backend (each in its own "
                                   "process) and compare their medians side by side")
    bench_parser.add_argument("--processes", type=_positive_int, default=None,
                              help="fresh processes per benchmark (default: the benchmark's own)")
    bench_parser.add_argument("--list", action="store_true", help="list benchmarks and exit")

    info_parser = commands.add_parser(
        "info", help="backend, versions, devices, chosen strategy and XLA choice")
    info_parser.add_argument("--strategy", default="auto", help="strategy kind to explain")
    info_parser.add_argument("--tpu", default=None, help="TPU name or address")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "demo" and args.list:
        return _list("demo/experiments")
    if args.command == "bench" and args.list and args.dir is None:
        return _list("bench/benchmarks")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with native_stderr_silenced() if _QUIET else contextlib.nullcontext():
        commands = importlib.import_module("keras_efficient.cli")
    return getattr(commands, args.command)(args)


if __name__ == "__main__":
    sys.exit(main())
