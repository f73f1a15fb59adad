"""Side-by-side ratio benchmarks: technique vs baseline vs peer, in one process.

A benchmark module in `benchmarks/` (file name `bench_*.py`) defines
`BENCHMARKS`, a list of `Benchmark`. Each case's `setup` builds what it needs
and returns a zero-argument `step` function; the runner warms every case up,
then times them in alternating rounds (the order rotates each round, so drift in
machine load hits every case alike), and reports the median time of each case
and its ratio to the baseline's median. `max_ratio` turns a performance claim
into a check: a case slower than its bound makes the run fail.

```python
from keras_efficient.benchmarking import Benchmark, Case

def _setup_plain():
    ...
    return lambda: train_step(batch)

BENCHMARKS = [
    Benchmark(
        name="my_technique",
        description="Train step of ... at batch 64.",
        cases=[Case("plain", _setup_plain),
               Case("technique", _setup_technique, max_ratio=0.8)],
        baseline="plain",
    )
]
```
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable

import keras
import numpy as np

from keras_efficient.distribute import describe


@dataclasses.dataclass
class Case:
    """One contestant.

    Args:
        name: label in the table.
        setup: builds the case and returns a zero-argument `step` function whose
            one call is one timed unit (a train step, an epoch, ...). A returned
            tensor is converted to numpy so asynchronous work is finished.
        max_ratio: optional bound on median(case) / median(baseline).
        min_ratio: optional lower bound (for claims like "at least 1.5x faster").
        max_ratio_to: optional bounds against other cases, `{case name: bound
            on median(case) / median(that case)}`: `{"peer": 1.0}` is "ours is
            not slower than the peer's". Names not among the benchmark's cases
            (a peer that is not installed) are skipped.
    """

    name: str
    setup: Callable[[], Callable[[], object]]
    max_ratio: float | None = None
    min_ratio: float | None = None
    max_ratio_to: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Benchmark:
    """A set of cases timed side by side.

    Args:
        name: identifier for `keras-efficient bench NAME`.
        description: what one step is, shapes and sizes.
        cases: the `Case`s, baseline included.
        baseline: the name of the case ratios are taken against.
        rounds: timed rounds (each round times every case once).
        warmup: untimed calls per case first (tracing, compilation, caches).
    """

    name: str
    description: str
    cases: list
    baseline: str
    rounds: int = 30
    warmup: int = 3

    def __post_init__(self):
        names = [case.name for case in self.cases]
        if self.baseline not in names:
            raise ValueError(
                f"Invalid value received for argument `baseline`. Expected one of "
                f"{names}. Received: baseline={self.baseline!r}"
            )


def _finish(result):
    # Eager TF ops and JAX's dispatch run asynchronously: wait for the values.
    if hasattr(result, "numpy"):
        result.numpy()
    elif hasattr(result, "block_until_ready"):
        result.block_until_ready()
    elif isinstance(result, (list, tuple)):
        for item in result:
            _finish(item)


def fit_step(model, x, y=None, batch_size=32):
    """A `step` that trains as users do: one `model.fit` epoch over in-memory arrays.

    `model` is compiled; the first call (a warm-up) traces and compiles.
    """
    def step():
        history = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        return history.history["loss"][-1]

    return step


def run_benchmark(benchmark, rounds=None, log=print, warmup=None):
    """Time every case of `benchmark`; return a JSON-ready dict of results.

    `rounds` and `warmup` override the benchmark's own counts.
    """
    rounds = rounds or benchmark.rounds
    warmup = benchmark.warmup if warmup is None else warmup
    steps = {}
    for case in benchmark.cases:
        log(f"  setting up {benchmark.name}/{case.name}")
        steps[case.name] = case.setup()
        for _ in range(warmup):
            _finish(steps[case.name]())
    times = {case.name: [] for case in benchmark.cases}
    order = [case.name for case in benchmark.cases]
    for round_index in range(rounds):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:
            start = time.perf_counter()
            _finish(steps[name]())
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(case_times)) for name, case_times in times.items()}
    cases = []
    for case in benchmark.cases:
        median = medians[case.name]
        ratio = median / medians[benchmark.baseline]
        ratios_to = {name: median / medians[name] for name in case.max_ratio_to
                     if name in medians}
        passed = (
            (case.max_ratio is None or ratio <= case.max_ratio)
            and (case.min_ratio is None or ratio >= case.min_ratio)
            and all(ratios_to[name] <= case.max_ratio_to[name] for name in ratios_to)
        )
        cases.append(
            {
                "case": case.name,
                "median_seconds": median,
                "p25_seconds": float(np.percentile(times[case.name], 25)),
                "p75_seconds": float(np.percentile(times[case.name], 75)),
                "ratio": ratio,
                "max_ratio": case.max_ratio,
                "min_ratio": case.min_ratio,
                "ratios_to": ratios_to,
                "max_ratio_to": {name: case.max_ratio_to[name] for name in ratios_to},
                "passed": passed,
                "seconds": times[case.name],
            }
        )
    return {
        "benchmark": benchmark.name,
        "backend": keras.backend.backend(),
        "description": benchmark.description,
        "baseline": benchmark.baseline,
        "rounds": rounds,
        "cases": cases,
    }


def format_table(result):
    """A Markdown table of one benchmark result."""
    lines = [
        f"### {result['benchmark']} ({result['backend']} backend): {result['description']}",
        "",
        f"| case | median ms | p25–p75 ms | ratio vs {result['baseline']} | bound | ok |",
        "|---|---:|---:|---:|---|---|",
    ]
    for case in result["cases"]:
        bounds = []
        if case["max_ratio"] is not None:
            bounds.append(f"≤ {case['max_ratio']:.2f}")
        if case["min_ratio"] is not None:
            bounds.append(f"≥ {case['min_ratio']:.2f}")
        bounds += [f"{case['ratios_to'][name]:.3f}× {name} (≤ {bound:.2f})"
                   for name, bound in case.get("max_ratio_to", {}).items()]
        lines.append(
            f"| {case['case']} | {case['median_seconds'] * 1e3:.2f} | "
            f"{case['p25_seconds'] * 1e3:.2f}–{case['p75_seconds'] * 1e3:.2f} | "
            f"{case['ratio']:.3f} | {' '.join(bounds) or '–'} | "
            f"{'yes' if case['passed'] else 'NO'} |"
        )
    return "\n".join(lines)


def default_benchmark_dir():
    """`./benchmarks` when run from a clone, else the one beside the package."""
    here = pathlib.Path.cwd() / "benchmarks"
    if here.is_dir():
        return here
    return pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


_LOADED = {}


def load_benchmark_module(path):
    """The module of one `bench_*.py` file, loaded once per process.

    A benchmark may reuse a sibling's models: `load_benchmark_module(
    pathlib.Path(__file__).with_name("bench_sam.py"))`.
    """
    path = pathlib.Path(path).resolve()
    if path not in _LOADED:
        spec = importlib.util.spec_from_file_location(f"_ke_bench_{path.stem}", path)
        _LOADED[path] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_LOADED[path])
    return _LOADED[path]


def discover(directory=None):
    """All `Benchmark`s defined in `bench_*.py` files of `directory`, by name."""
    directory = pathlib.Path(directory or default_benchmark_dir())
    if not directory.is_dir():
        raise FileNotFoundError(f"No benchmark directory at {directory}.")
    found = {}
    for path in sorted(directory.glob("bench_*.py")):
        for benchmark in getattr(load_benchmark_module(path), "BENCHMARKS", []):
            found[benchmark.name] = benchmark
    return found


def compare_backends(names, backends, out, rounds=None, directory=None, log=print,
                     warmup=None):
    """Run benchmarks `names` once per Keras backend, each in its own process.

    A backend is fixed when Keras is imported, so every backend gets a fresh
    `keras-efficient bench` process (the same names, rounds, warm-up and benchmark
    folder). Returns a JSON-ready dict: per benchmark, each case that ran on every
    backend with its median seconds per backend and the ratio of the last backend
    to the first.
    """
    out = pathlib.Path(out)
    runs = {}
    for backend in backends:
        log(f"== KERAS_BACKEND={backend}")
        sys.stdout.flush()  # before the child's output
        command = [sys.executable, "-m", "keras_efficient.cli", "bench", *names,
                   "--out", str(out / backend)]
        command += ["--rounds", str(rounds)] if rounds else []
        command += ["--warmup", str(warmup)] if warmup is not None else []
        command += ["--dir", str(directory)] if directory else []
        completed = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": backend},
                                   check=False)
        if completed.returncode not in (0, 1):  # 1: a ratio bound missed, figures exist
            raise RuntimeError(f"The {backend} run failed (exit {completed.returncode}).")
        runs[backend] = {name: json.loads((out / backend / f"{name}.json").read_text())
                         for name in names}
    first, last = backends[0], backends[-1]
    comparison = {"backends": list(backends), "benchmarks": []}
    for name in names:
        results = {backend: runs[backend][name] for backend in backends}
        medians = {backend: {case["case"]: case["median_seconds"]
                             for case in result["cases"]}
                   for backend, result in results.items()}
        comparison["benchmarks"].append({
            "benchmark": name,
            "description": results[first]["description"],
            "devices": {backend: result["devices"] for backend, result in results.items()},
            "rounds": results[first]["rounds"],
            "cases": [{"case": case, "median_seconds": {b: medians[b][case] for b in backends},
                       "ratio": medians[last][case] / medians[first][case]}
                      for case in medians[first]
                      if all(case in medians[backend] for backend in backends)],
        })
    return comparison


def format_backend_table(comparison):
    """A Markdown table per benchmark: rows = cases, columns = backends and the ratio."""
    backends = comparison["backends"]
    first, last = backends[0], backends[-1]
    tables = []
    for result in comparison["benchmarks"]:
        lines = [
            f"### {result['benchmark']} by backend: {result['description']}",
            "",
            "| case | " + " | ".join(f"{backend} median ms" for backend in backends)
            + f" | {last}/{first} |",
            "|---|" + "---:|" * (len(backends) + 1),
        ]
        for case in result["cases"]:
            times = " | ".join(f"{case['median_seconds'][b] * 1e3:.1f}" for b in backends)
            lines.append(f"| {case['case']} | {times} | {case['ratio']:.2f} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-efficient bench",
        description="Time techniques against their baselines and peers, side by side.",
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--out", default="bench_results", help="folder for JSON results")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls per case first (default: each benchmark's)")
    parser.add_argument("--dir", default=None, help="folder holding bench_*.py")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    parser.add_argument("--backends", nargs="+", default=None,
                        choices=("tensorflow", "jax"),
                        help="run the benchmarks once per Keras backend (each in its own "
                             "process) and compare their medians side by side")
    args = parser.parse_args(argv)

    available = discover(args.dir)
    if args.list:
        for name, benchmark in available.items():
            print(f"{name}: {benchmark.description}")
        return 0
    unknown = [name for name in args.names if name not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(available)}")
    selected = args.names or list(available)
    if args.backends:
        comparison = compare_backends(selected, args.backends, args.out, args.rounds,
                                      args.dir, warmup=args.warmup)
        table = format_backend_table(comparison)
        print(table, flush=True)
        out = pathlib.Path(args.out)
        (out / "backends.json").write_text(json.dumps(comparison, indent=2))
        (out / "backends.md").write_text(table + "\n")
        return 0
    devices = describe()["devices"]
    print(f"Keras backend: {keras.backend.backend()}; devices: {', '.join(devices)}", flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    tables = []
    for index, name in enumerate(selected, 1):
        print(f"[{index}/{len(selected)}] {name}", flush=True)
        result = {**run_benchmark(available[name], rounds=args.rounds, warmup=args.warmup),
                  "devices": devices}
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        tables.append(format_table(result))
        print(tables[-1], flush=True)
        failures += [f"{name}/{c['case']}" for c in result["cases"] if not c["passed"]]
    (out / "summary.md").write_text("\n\n".join(tables) + "\n")
    if failures:
        print(f"Ratio bounds not met: {failures}", file=sys.stderr)
        return 1
    return 0
