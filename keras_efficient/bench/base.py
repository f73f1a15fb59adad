"""Side-by-side ratio benchmarks: technique vs baseline vs peer, in one process.

A benchmark module in `keras_efficient.bench.benchmarks` defines
`BENCHMARKS`, a list of `Benchmark`. Each case's `setup` builds what it needs
and returns a zero-argument `step` function; the runner warms every case up,
then times them in alternating rounds (the order rotates each round, so drift in
machine load hits every case alike), and reports the median time of each case
and its ratio to the baseline's median. `max_ratio` turns a performance claim
into a check: a case slower than its bound makes the run fail.

A ratio that holds in one process may not hold in the next (thread pools, the
random draws of a technique, the machine's load are fixed per process), so a
benchmark can run in several fresh processes (`processes=`, or `--processes N`
on the command line): each process times every case as above, the report gives
each ratio's min / median / max across processes, and a bound must hold on the
median ratio and, within `worst_process_margin`, in every single process.

```python
from keras_efficient.bench.base import Benchmark, Case

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

import dataclasses
import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np

from keras_efficient.distribute import describe
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


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
        processes: fresh processes to run the benchmark in (1: this process).
        worst_process_margin: with several processes, how far beyond its bound
            the ratio of the worst single process may lie (`max_ratio=0.8` with
            margin 0.1: median <= 0.8 and every process <= 0.9).
    """

    name: str
    description: str
    cases: list
    baseline: str
    rounds: int = 30
    warmup: int = 3
    report: Callable[[], str] | None = None
    processes: int = 1
    worst_process_margin: float = 0.1

    def __post_init__(self):
        validate_size("processes", self.processes)
        validate_number("worst_process_margin", self.worst_process_margin, 0)
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
        passed = _within_bounds(case, ratio, ratios_to)
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


def _within_bounds(case, ratio, ratios_to, margin=0.0):
    """Whether `case`'s bounds, each widened by `margin`, hold for these ratios."""
    return (
        (case.max_ratio is None or ratio <= case.max_ratio + margin)
        and (case.min_ratio is None or ratio >= case.min_ratio - margin)
        and all(ratios_to[name] <= case.max_ratio_to[name] + margin for name in ratios_to)
    )


def combine_processes(benchmark, results):
    """One result from `run_benchmark` results of several processes.

    A case's ratio is the median of the per-process ratios; it passes when its
    bounds hold on that median and, widened by `worst_process_margin`, in every
    process (the worst one included).
    """
    cases = []
    for index, case in enumerate(benchmark.cases):
        runs = [result["cases"][index] for result in results]
        ratios = [run["ratio"] for run in runs]
        ratios_to = {name: [run["ratios_to"][name] for run in runs]
                     for name in runs[0]["ratios_to"]}
        median_to = {name: float(np.median(values)) for name, values in ratios_to.items()}
        passed = _within_bounds(case, float(np.median(ratios)), median_to) and all(
            _within_bounds(case, run["ratio"], run["ratios_to"], benchmark.worst_process_margin)
            for run in runs
        )
        cases.append(
            {
                **{key: runs[0][key] for key in ("case", "max_ratio", "min_ratio", "max_ratio_to")},
                "median_seconds": float(np.median([run["median_seconds"] for run in runs])),
                "ratio": float(np.median(ratios)),
                "ratio_min": float(min(ratios)),
                "ratio_max": float(max(ratios)),
                "process_ratios": ratios,
                "ratios_to": median_to,
                "process_ratios_to": ratios_to,
                "passed": passed,
            }
        )
    return {**results[0], "processes": len(results),
            "worst_process_margin": benchmark.worst_process_margin, "cases": cases}


def _bench_command(names, out, rounds, warmup, directory):
    """The `keras-efficient bench` command line of a child process."""
    command = [sys.executable, "-m", "keras_efficient.bench", *names, "--out", str(out)]
    command += ["--rounds", str(rounds)] if rounds else []
    command += ["--warmup", str(warmup)] if warmup is not None else []
    command += ["--dir", str(directory)] if directory else []
    return command


def run_in_processes(benchmark, processes, directory, rounds=None, log=print, warmup=None):
    """`run_benchmark` in `processes` fresh Python processes, one after the other."""
    results = []
    with tempfile.TemporaryDirectory() as out:
        for index in range(processes):
            command = [*_bench_command([benchmark.name], out, rounds, warmup, directory),
                       "--processes", "1"]
            run = subprocess.run(command, capture_output=True, text=True, check=False)
            path = pathlib.Path(out) / f"{benchmark.name}.json"
            if not path.exists():
                raise RuntimeError(f"Benchmark process {index + 1} failed:\n{run.stderr[-4000:]}")
            results.append(json.loads(path.read_text()))
            path.unlink()
            ratios = ", ".join(f"{case['case']} {case['ratio']:.3f}"
                               for case in results[-1]["cases"])
            log(f"  process {index + 1}/{processes}: {ratios} "
                f"(load average {os.getloadavg()[0]:.1f})")
    return combine_processes(benchmark, results)


def format_table(result):
    """A Markdown table of one benchmark result."""
    processes = result.get("processes", 1)
    spread_label, ratio_label = (
        (f"ratio min–max over {processes} processes", "median ratio") if processes > 1
        else ("p25–p75 ms", "ratio"))
    lines = [
        f"### {result['benchmark']} ({result['backend']} backend): {result['description']}",
        "",
        (f"| case | median ms | {spread_label} | {ratio_label} vs {result['baseline']} | "
         "bound | ok |"),
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
        if processes > 1:
            spread = f"{case['ratio_min']:.3f}–{case['ratio_max']:.3f}"
            if bounds:
                bounds.append(f"(each process +{result['worst_process_margin']:.2f})")
        else:
            spread = f"{case['p25_seconds'] * 1e3:.2f}–{case['p75_seconds'] * 1e3:.2f}"
        lines.append(
            f"| {case['case']} | {case['median_seconds'] * 1e3:.2f} | {spread} | "
            f"{case['ratio']:.3f} | {' '.join(bounds) or '–'} | "
            f"{'yes' if case['passed'] else 'NO'} |"
        )
    if result.get("report"):
        lines += ["", result["report"]]
    return "\n".join(lines)


def _modules(directory):
    if directory is None:
        from keras_efficient.bench import benchmarks

        for module in benchmarks.MODULES:
            yield importlib.import_module(f"{benchmarks.__name__}.{module}")
        return
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No benchmark directory at {directory}.")
    for path in sorted(directory.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_ke_bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def discover(directory=None):
    """All `Benchmark`s by name: those of `keras_efficient.bench.benchmarks`, or those
    defined in the `*.py` files of `directory`."""
    found = {}
    for module in _modules(directory):
        for benchmark in getattr(module, "BENCHMARKS", []):
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
        command = _bench_command(names, out / backend, rounds, warmup, directory)
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


def run_benchmarks(names=(), out="bench_results", rounds=None, directory=None,
                   processes=None, warmup=None, backends=None):
    """`keras-efficient bench`: run the benchmarks `names` (default: all) found by
    `discover(directory)` (each in `processes` fresh processes, default: the
    benchmark's own; `warmup` untimed calls per case, default: the benchmark's),
    print each table, write `<name>.json` and `summary.md` to `out`; return 1 if
    a ratio bound is not met, else 0. With `backends`, run them once per Keras
    backend instead (`compare_backends`) and write `backends.json`/`.md`."""
    available = discover(directory)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise SystemExit(f"keras-efficient bench: unknown benchmark(s) {unknown}; "
                         f"available: {sorted(available)}")
    selected = list(names) or list(available)
    if backends:
        comparison = compare_backends(selected, backends, out, rounds, directory,
                                      warmup=warmup)
        table = format_backend_table(comparison)
        print(table, flush=True)
        (pathlib.Path(out) / "backends.json").write_text(json.dumps(comparison, indent=2))
        (pathlib.Path(out) / "backends.md").write_text(table + "\n")
        return 0
    devices = describe()["devices"]
    print(f"Keras backend: {keras.backend.backend()}; devices: {', '.join(devices)}", flush=True)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    tables = []
    for index, name in enumerate(selected, 1):
        print(f"[{index}/{len(selected)}] {name}", flush=True)
        benchmark = available[name]
        if (processes or benchmark.processes) > 1:
            result = run_in_processes(benchmark, processes or benchmark.processes, directory,
                                      rounds=rounds, warmup=warmup)
        else:
            result = run_benchmark(benchmark, rounds=rounds, warmup=warmup)
        result = {**result, "devices": devices, "load_average": os.getloadavg()}
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        tables.append(format_table(result))
        print(tables[-1], flush=True)
        failures += [f"{name}/{c['case']}" for c in result["cases"] if not c["passed"]]
    (out / "summary.md").write_text("\n\n".join(tables) + "\n")
    if failures:
        print(f"Ratio bounds not met: {failures}", file=sys.stderr)
        return 1
    print("All ratio bounds met.", flush=True)
    return 0

