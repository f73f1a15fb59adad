"""Experiments for `keras-efficient demo`: one module per experiment, named after
the experiment it registers (see `keras_efficient.demo.base.register_experiment`),
or after the family when it registers several.

`MODULES` is the demo's table of contents, read by `demo --list` without
importing the modules (they import TensorFlow); `tests/foundation/test_layout.py`
checks it against the files here and what each registers.
"""

# module -> the experiments it registers, in the order the demo runs them.
MODULES = {
    "baseline": ("baseline",),
    "curriculum": ("curriculum", "progressive_resizing"),
    "distillation": ("distillation",),
    "federated": ("federated",),
    "few_shot": ("few_shot", "few_shot_5shot"),
    "in_context": ("in_context",),
    "soft_targets": ("soft_targets",),
    "sam": ("sam",),
    "ssl": ("ssl", "ssl_1pct"),
    "stochastic_depth": ("stochastic_depth",),
}
