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
    "curriculum": ("curriculum", "curriculum_tight_budget", "progressive_resizing"),
    "distillation": ("distillation", "distillation_tuned"),
    "federated": ("federated",),
    "few_shot": ("few_shot", "few_shot_5shot"),
    "in_context": ("in_context",),
    "soft_targets": ("soft_targets",),
    "sam": ("sam", "sam_noise_20", "sam_noise_40"),
    "ssl": ("ssl_core", "ssl", "ssl_1pct"),
    "stochastic_depth": ("stochastic_depth", "stochastic_depth_frontier"),
}

# The longer studies (`Experiment.full_only`): run by `demo --full` or `--only NAME`,
# outside the default demo's time budget.
STUDIES = ("curriculum_tight_budget", "distillation_tuned", "sam_noise_20", "sam_noise_40",
           "ssl", "ssl_1pct", "stochastic_depth_frontier")
