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
import pathlib
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
        report: optional zero-argument function run after the timing, returning
            Markdown with measurements other than time (e.g. peak memory), kept
            in the JSON result and printed under the table.
    """

    name: str
    description: str
    cases: list
    baseline: str
    rounds: int = 30
    warmup: int = 3
    report: Callable[[], str] | None = None

    def __post_init__(self):
        names = [case.name for case in self.cases]
        if self.baseline not in names:
            raise ValueError(
                f"Invalid value received for argument `baseline`. Expected one of "
                f"{names}. Received: baseline={self.baseline!r}"
            )


def _finish(result):
    # Eager TF ops may run asynchronously; reading the value waits for them.
    if hasattr(result, "numpy"):
        result.numpy()
    elif isinstance(result, (list, tuple)):
        for item in result:
            _finish(item)


def run_benchmark(benchmark, rounds=None, log=print):
    """Time every case of `benchmark`; return a JSON-ready dict of results."""
    rounds = rounds or benchmark.rounds
    steps = {}
    for case in benchmark.cases:
        log(f"  setting up {benchmark.name}/{case.name}")
        steps[case.name] = case.setup()
        for _ in range(benchmark.warmup):
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
        "report": benchmark.report() if benchmark.report else None,
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
    if result.get("report"):
        lines += ["", result["report"]]
    return "\n".join(lines)


def default_benchmark_dir():
    """`./benchmarks` when run from a clone, else the one beside the package."""
    here = pathlib.Path.cwd() / "benchmarks"
    if here.is_dir():
        return here
    return pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def discover(directory=None):
    """All `Benchmark`s defined in `bench_*.py` files of `directory`, by name."""
    directory = pathlib.Path(directory or default_benchmark_dir())
    if not directory.is_dir():
        raise FileNotFoundError(f"No benchmark directory at {directory}.")
    found = {}
    for path in sorted(directory.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"_ke_bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for benchmark in getattr(module, "BENCHMARKS", []):
            found[benchmark.name] = benchmark
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-efficient bench",
        description="Time techniques against their baselines and peers, side by side.",
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--out", default="bench_results", help="folder for JSON results")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--dir", default=None, help="folder holding bench_*.py")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
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
    devices = describe()["devices"]
    print(f"Keras backend: {keras.backend.backend()}; devices: {', '.join(devices)}", flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    tables = []
    for index, name in enumerate(selected, 1):
        print(f"[{index}/{len(selected)}] {name}", flush=True)
        result = {**run_benchmark(available[name], rounds=args.rounds), "devices": devices}
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        tables.append(format_table(result))
        print(tables[-1], flush=True)
        failures += [f"{name}/{c['case']}" for c in result["cases"] if not c["passed"]]
    (out / "summary.md").write_text("\n\n".join(tables) + "\n")
    if failures:
        print(f"Ratio bounds not met: {failures}", file=sys.stderr)
        return 1
    return 0
