"""Benchmarks for `keras-efficient bench`: one module per benchmark, named after the
benchmark it defines in `BENCHMARKS` (a list of `keras_efficient.bench.base.Benchmark`),
or after the family when it defines several.

`MODULES` is the table of contents, read by `bench --list` without importing the
modules (they import TensorFlow); `tests/foundation/test_layout.py` checks it
against the files here and what each defines.
"""

# module -> the benchmarks its `BENCHMARKS` defines, in that order.
MODULES = {
    "backend_steps": ("backend_steps",),
    "curriculum": ("progressive_resizing", "example_statistics"),
    "federated": ("federated",),
    "maml": ("maml", "maml_order"),
    "sam": ("sam",),
    "ssl": ("ssl_nt_xent", "ssl_simclr_step"),
    "stochastic_depth": ("stochastic_depth", "stochastic_depth_fit", "stochastic_depth_fit_data"),
    "xla": ("xla", "xla_sam", "xla_resnet_stochastic_depth"),
}
