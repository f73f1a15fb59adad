"""The ratio-benchmark runner, on a fake clock so the arithmetic is exact."""

import json
import pathlib
import subprocess

import keras
import pytest

from keras_efficient import bench
from keras_efficient.bench import base as benchmarking
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case
from keras_efficient.cli import main


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def stepper(self, seconds):
        def step():
            self.now += seconds

        return step


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(benchmarking.time, "perf_counter", fake)
    return fake


def _benchmark(clock, max_ratio=None, min_ratio=None):
    return Benchmark(
        name="fake",
        description="fake steps",
        cases=[Case("plain", lambda: clock.stepper(0.010)),
               Case("technique", lambda: clock.stepper(0.004), max_ratio=max_ratio,
                    min_ratio=min_ratio)],
        baseline="plain",
        rounds=5,
        warmup=1,
    )


def test_run_benchmark__medians_and_ratios(clock):
    result = benchmarking.run_benchmark(_benchmark(clock, max_ratio=0.5), log=lambda _: None)
    plain, technique = result["cases"]
    assert plain["median_seconds"] == pytest.approx(0.010)
    assert technique["ratio"] == pytest.approx(0.4)
    assert technique["passed"] and len(technique["seconds"]) == 5


def test_run_benchmark__warmup_override(clock):
    calls = []
    step = clock.stepper(0.01)
    benchmark = Benchmark("w", "d", [Case("a", lambda: lambda: (calls.append(1), step()))],
                          "a", rounds=2, warmup=3)
    benchmarking.run_benchmark(benchmark, log=lambda _: None, warmup=0)
    assert len(calls) == 2
    benchmarking.run_benchmark(benchmark, rounds=1, log=lambda _: None)
    assert len(calls) == 2 + 3 + 1


def test_run_benchmark__bounds_fail(clock):
    result = benchmarking.run_benchmark(_benchmark(clock, max_ratio=0.3), log=lambda _: None)
    assert not result["cases"][1]["passed"]
    result = benchmarking.run_benchmark(_benchmark(clock, min_ratio=0.5), log=lambda _: None)
    assert not result["cases"][1]["passed"]


def test_format_table__shows_ratio_and_verdict(clock):
    table = benchmarking.format_table(
        benchmarking.run_benchmark(_benchmark(clock, max_ratio=0.3), log=lambda _: None))
    assert "| technique | 4.00 |" in table and "0.400" in table and "≤ 0.30" in table
    assert table.rstrip().endswith("NO |")


def test_run_benchmark__bound_against_another_case(clock):
    def benchmark(technique_seconds):
        return Benchmark(
            name="fake", description="fake steps", baseline="plain", rounds=3, warmup=0,
            cases=[Case("plain", lambda: clock.stepper(0.010)),
                   Case("peer", lambda: clock.stepper(0.005)),
                   Case("technique", lambda: clock.stepper(technique_seconds),
                        max_ratio=1.0, max_ratio_to={"peer": 1.0, "not_installed": 1.0})])

    faster = benchmarking.run_benchmark(benchmark(0.004), log=lambda _: None)["cases"][2]
    assert faster["passed"] and faster["ratios_to"] == {"peer": pytest.approx(0.8)}
    # Within the baseline bound (0.6 <= 1.0) but slower than the peer: fails.
    slower = benchmarking.run_benchmark(benchmark(0.006), log=lambda _: None)
    assert not slower["cases"][2]["passed"]
    assert "≤ 1.00 1.200× peer (≤ 1.00)" in benchmarking.format_table(slower)


def test_benchmark__unknown_baseline_raises():
    with pytest.raises(ValueError, match="argument `baseline`"):
        Benchmark("b", "d", [Case("a", lambda: None)], baseline="z")


@pytest.mark.parametrize("kwargs, argument", [
    ({"processes": 0}, "processes"), ({"worst_process_margin": -0.1}, "worst_process_margin"),
])
def test_benchmark__bad_process_settings_raise(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        Benchmark("b", "d", [Case("a", lambda: None)], baseline="a", **kwargs)


BENCH_FILE = '''
import time
from keras_efficient.bench.base import Benchmark, Case
def _sleep(seconds):
    return lambda: (lambda: time.sleep(seconds))
BENCHMARKS = [Benchmark("tiny", "sleeps", [Case("a", _sleep(0.0)),
              Case("b", _sleep(0.02), max_ratio={bound})], baseline="a", rounds=3, warmup=0)]
'''


@pytest.mark.parametrize("bound, exit_code", [(1e9, 0), (1.0, 1)])
def test_main__writes_json_and_fails_on_unmet_bound(tmp_path, bound, exit_code, capsys):
    (tmp_path / "bench_tiny.py").write_text(BENCH_FILE.format(bound=bound))
    out = tmp_path / "out"
    assert main(["bench", "tiny", "--dir", str(tmp_path), "--out", str(out)]) == exit_code
    result = json.loads((out / "tiny.json").read_text())
    assert [case["case"] for case in result["cases"]] == ["a", "b"]
    assert "### tiny" in (out / "summary.md").read_text()
    # Which backend and devices the figures come from, in the output and the JSON.
    backend = keras.backend.backend()
    assert result["backend"] == backend and result["devices"]
    assert f"Keras backend: {backend}" in capsys.readouterr().out
    assert f"### tiny ({backend} backend)" in (out / "summary.md").read_text()


def test_main__unknown_benchmark_is_an_error(tmp_path):
    (tmp_path / "bench_tiny.py").write_text(BENCH_FILE.format(bound=1e9))
    with pytest.raises(SystemExit):
        main(["bench", "nope", "--dir", str(tmp_path)])


def _fake_backend_run(calls, exit_code=0):
    """`subprocess.run` of one backend's `keras-efficient bench`: writes its JSON."""
    def run(command, env, check):
        backend = env["KERAS_BACKEND"]
        calls.append((command, backend))
        out = pathlib.Path(command[command.index("--out") + 1])
        out.mkdir(parents=True)
        seconds = {"tensorflow": 0.020, "jax": 0.010}[backend]
        (out / "tiny.json").write_text(json.dumps({
            "description": "sleeps", "devices": [f"{backend} CPU"], "rounds": 2,
            "cases": [{"case": "a", "median_seconds": seconds},
                      {"case": "b", "median_seconds": 3 * seconds}]}))
        return subprocess.CompletedProcess(command, exit_code)

    return run


def test_bench_command__backends_runs_each_backend_in_its_own_process(tmp_path, monkeypatch, capsys):
    (tmp_path / "bench_tiny.py").write_text(BENCH_FILE.format(bound=1e9))
    calls = []
    monkeypatch.setattr(benchmarking.subprocess, "run", _fake_backend_run(calls))
    out = tmp_path / "out"
    assert main(["bench", "tiny", "--dir", str(tmp_path), "--out", str(out), "--rounds", "2",
                 "--backends", "tensorflow", "jax"]) == 0
    assert [backend for _, backend in calls] == ["tensorflow", "jax"]
    for command, backend in calls:
        assert command[1:] == ["-m", "keras_efficient.bench", "tiny", "--out",
                               str(out / backend), "--rounds", "2", "--dir", str(tmp_path)]
    comparison = json.loads((out / "backends.json").read_text())
    first, second = comparison["benchmarks"][0]["cases"]
    assert first["median_seconds"] == {"tensorflow": 0.020, "jax": 0.010}
    assert first["ratio"] == pytest.approx(0.5) and second["ratio"] == pytest.approx(0.5)
    printed = capsys.readouterr().out
    assert "| case | tensorflow median ms | jax median ms | jax/tensorflow |" in printed
    assert "| a | 20.0 | 10.0 | 0.50 |" in printed and "| b | 60.0 | 30.0 | 0.50 |" in printed
    assert printed.count("| a |") == 1 and (out / "backends.md").read_text() in printed


def test_bench_command__backends_reports_a_failed_backend_run(tmp_path, monkeypatch):
    (tmp_path / "bench_tiny.py").write_text(BENCH_FILE.format(bound=1e9))
    monkeypatch.setattr(benchmarking.subprocess, "run", _fake_backend_run([], exit_code=2))
    with pytest.raises(RuntimeError, match="tensorflow run failed \\(exit 2\\)"):
        main(["bench", "tiny", "--dir", str(tmp_path), "--out", str(tmp_path / "o"),
               "--backends", "tensorflow", "jax"])


GPU_SCRIPT = pathlib.Path(bench.__file__).parent / "gpu.sh"


def _gpu_script(*args):
    return subprocess.run(["bash", str(GPU_SCRIPT), *args], capture_output=True, text=True,
                          check=False)


def test_gpu_script__dry_run_prints_the_ratio_benchmarks_with_the_options():
    default = _gpu_script("--dry-run")
    assert default.returncode == 0, default.stderr
    assert ("bench sam stochastic_depth ssl_nt_xent maml_order --rounds 20 --out "
            "bench_results/gpu" in default.stdout)
    assert "timeout 480" in default.stdout
    chosen = _gpu_script("--dry-run", "--rounds", "7", "--backend", "jax", "--out", "x y")
    assert chosen.returncode == 0, chosen.stderr
    assert "KERAS_BACKEND=jax" in chosen.stdout and "--rounds 7 --out x\\ y" in chosen.stdout
    # --quick: every case once, no warm-up and no time limit (a smoke run on a CPU).
    quick = _gpu_script("--dry-run", "--quick", "--backend", "jax")
    assert quick.returncode == 0, quick.stderr
    assert "bench sam stochastic_depth ssl_nt_xent maml_order --rounds 1 --warmup 0" in quick.stdout
    assert "timeout" not in quick.stdout and "KERAS_BACKEND=jax" in quick.stdout


@pytest.mark.parametrize("args, message", [
    (["--rounds", "0"], "--rounds"), (["--rounds", "many"], "--rounds"),
    (["--backend", "torch"], "--backend"), (["--fast"], "--fast"), (["--rounds"], "--rounds"),
])
def test_gpu_script__bad_arguments_are_a_clear_error(args, message):
    result = _gpu_script("--dry-run", *args)
    assert result.returncode == 2 and message in result.stderr


def _process_result(clock, technique_seconds):
    """One process's result, as `run_benchmark` gives it."""
    benchmark = Benchmark("fake", "fake steps", baseline="plain", rounds=3, warmup=0,
                          cases=[Case("plain", lambda: clock.stepper(0.010)),
                                 Case("technique", lambda: clock.stepper(technique_seconds),
                                      max_ratio=0.8)])
    return benchmark, benchmarking.run_benchmark(benchmark, log=lambda _: None)


@pytest.mark.parametrize("technique_seconds, passed", [
    ((0.007, 0.0079, 0.0085), True),  # median 0.79, worst 0.85 <= 0.8 + 0.1
    ((0.007, 0.0081, 0.0081), False),  # median 0.81 above the bound
    ((0.005, 0.006, 0.0095), False),  # median 0.60, but one process at 0.95 > 0.9
])
def test_combine_processes__bound_on_median_and_worst_process(clock, technique_seconds, passed):
    runs = [_process_result(clock, seconds) for seconds in technique_seconds]
    combined = benchmarking.combine_processes(runs[0][0], [result for _, result in runs])
    technique = combined["cases"][1]
    ratios = [seconds / 0.010 for seconds in technique_seconds]
    assert technique["ratio"] == pytest.approx(sorted(ratios)[1])
    assert technique["ratio_min"] == pytest.approx(min(ratios))
    assert technique["ratio_max"] == pytest.approx(max(ratios))
    assert technique["passed"] is passed and combined["processes"] == 3
    table = benchmarking.format_table(combined)
    assert "ratio min–max over 3 processes" in table
    assert f"{min(ratios):.3f}–{max(ratios):.3f}" in table and "(each process +0.10)" in table


def test_bench_command__processes_runs_each_in_a_fresh_process(tmp_path, monkeypatch, capsys):
    (tmp_path / "bench_tiny.py").write_text(BENCH_FILE.format(bound=1e9))
    commands = []

    def fake_run(command, **kwargs):
        # The child's command line, run here instead of in a new interpreter.
        commands.append(command)
        assert command[1:3] == ["-m", "keras_efficient.bench"]
        main(["bench", *command[3:]])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(benchmarking.subprocess, "run", fake_run)
    out = tmp_path / "out"
    assert main(["bench", "tiny", "--dir", str(tmp_path), "--out", str(out),
                 "--processes", "2", "--rounds", "2"]) == 0
    assert len(commands) == 2 and all("--rounds" in command for command in commands)
    result = json.loads((out / "tiny.json").read_text())
    assert result["processes"] == 2 and len(result["cases"][1]["process_ratios"]) == 2
    assert len(result["load_average"]) == 3
    assert "process 2/2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "tiny", "--dir", str(tmp_path), "--processes", "0"])
