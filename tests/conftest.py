"""Test setup that must happen before TensorFlow initializes: two logical CPU
devices (for the harness's `replicas` check), quiet logs, and no network."""

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

from keras_efficient.testing import split_cpu

split_cpu(2)

import pytest

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    # Tests are offline: anything but loopback (e.g. a dataset download) fails loudly.
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
        raise OSError(f"Network access is disabled in tests (tried to connect to {address}).")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _float32_policy():
    # A test that fails inside a mixed-precision block must not leak its policy.
    import keras

    yield
    keras.config.set_dtype_policy("float32")
