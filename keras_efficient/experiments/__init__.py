"""Experiments for `keras-efficient demo`: one module per technique, each
registering an `Experiment` (see `base.py`) that measures the technique against
its baseline on the embedded digits."""

import importlib
import pkgutil

_INFRASTRUCTURE = {"base", "runner", "report"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{__name__}.{_module.name}")
