"""Test setup that must happen before TensorFlow initializes: two logical CPU
devices (for the harness's `replicas` check), quiet logs, and no network."""

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")
# Two host devices for JAX's `replicas` check; must be set before JAX initializes.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=2").strip()

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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only(reason): a TensorFlow-only piece (tf.distribute "
        "internals, multi-worker, tf.data-only code); skipped on other backends")


def pytest_collection_modifyitems(config, items):
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {reason}"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _float32_policy():
    # A test that fails inside a mixed-precision block must not leak its policy.
    import keras

    yield
    keras.config.set_dtype_policy("float32")
