"""Multi-worker training with real worker processes on 127.0.0.1.

Each test starts two workers (bounded in time; killed if they overrun) and
compares their final weights with a one-process run on the same global batches.
"""

import importlib.util
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).with_name("multi_worker_script.py")
TIMEOUT_SECONDS = 180


def _script_module():
    spec = importlib.util.spec_from_file_location("multi_worker_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "weights.npz"
    _script_module().train(str(path))
    return _weights(path)


def _weights(path):
    saved = np.load(path)
    return [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)], saved["epochs"].tolist()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ",".join(map(str, ports))


def _start_workers(tmp_path, run, extra_by_index=None):
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        command = [sys.executable, str(SCRIPT), str(index), ports,
                   str(tmp_path / f"{run}-worker{index}.npz")]
        command += (extra_by_index or {}).get(index, [])
        # The child keeps its own copy of the log's descriptor.
        with open(tmp_path / f"{run}-worker{index}.log", "w") as log:
            workers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    return workers


def _wait(workers, tmp_path, run):
    codes = []
    for worker in workers:
        try:
            codes.append(worker.wait(timeout=TIMEOUT_SECONDS))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            pytest.fail(f"{run}: a worker ran past {TIMEOUT_SECONDS}s")
    if any(codes):
        logs = "\n".join((tmp_path / f"{run}-worker{i}.log").read_text()[-3000:]
                         for i in range(2))
        pytest.fail(f"{run}: worker exit codes {codes}\n{logs}")


def _assert_equal_to_reference(tmp_path, run, reference_weights):
    expected, _ = reference_weights
    first, epochs = _weights(tmp_path / f"{run}-worker0.npz")
    second, _ = _weights(tmp_path / f"{run}-worker1.npz")
    for index, (a, b, ref) in enumerate(zip(first, second, expected)):
        np.testing.assert_array_equal(a, b, err_msg=f"workers disagree on weight {index}")
        np.testing.assert_allclose(a, ref, atol=1e-5,
                                   err_msg=f"weight {index} differs from one process")
    return epochs


@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy workers")
def test_two_workers__agree_and_equal_one_process(tmp_path, reference_weights):
    workers = _start_workers(tmp_path, "plain")
    _wait(workers, tmp_path, "plain")
    epochs = _assert_equal_to_reference(tmp_path, "plain", reference_weights)
    assert epochs == [0, 1, 2]


@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy workers")
def test_two_workers__killed_worker_resumes_at_the_exact_step(tmp_path, reference_weights):
    backup = ["--backup", str(tmp_path / "backup")]
    # Worker 1 dies after 8 of 15 steps; the last backup is at step 7 (epoch 1,
    # step 2): the restarted run must redo step 8 once and lose nothing.
    dying = backup + ["--die-after", "8", "--marker", str(tmp_path / "died")]
    workers = _start_workers(tmp_path, "crash", {0: backup, 1: dying})
    assert workers[1].wait(timeout=TIMEOUT_SECONDS) == 3
    workers[0].kill()  # the cluster restarts as a whole, as on a preemption
    workers[0].wait(timeout=30)
    positions = sorted((tmp_path / "backup").glob("*/position.json"))
    assert [p.parent.name for p in positions] == ["worker-0", "worker-1"]
    assert '"epoch": 1, "step": 2' in positions[1].read_text()

    workers = _start_workers(tmp_path, "resume", {0: backup, 1: dying})
    _wait(workers, tmp_path, "resume")
    epochs = _assert_equal_to_reference(tmp_path, "resume", reference_weights)
    assert epochs == [1, 2]  # the interrupted epoch finished, then the last one
    assert not list((tmp_path / "backup").glob("*/position.json"))  # cleaned up
