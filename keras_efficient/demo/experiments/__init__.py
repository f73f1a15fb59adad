"""Experiments for `keras-efficient demo`: one module per technique, each
registering an `Experiment` (see `keras_efficient.demo.base`) that measures the
technique against its baseline on the embedded digits."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
