"""Experiment configs: YAML files with a `runtime`, a `trainer` and a `task` block.

```yaml
runtime:                 # where and how it runs
  strategy: auto         # auto | tpu | mirrored | multi_worker | gpu | cpu
  tpu: null              # TPU name or grpc address
  mixed_precision: float32   # a Keras dtype policy: float32 | mixed_bfloat16 | mixed_float16
  jit_compile: auto      # auto (ke.distribute.jit_compile_for) | true | false
  steps_per_execution: 1
trainer:                 # the training budget
  optimizer: null        # a Keras optimizer name; null: each experiment's own
  learning_rate: null    # null: each experiment's own
  epochs: null           # null: each experiment's own budget
  batch_size: 64
  seeds: [0, 1, 2]
task:                    # what is trained and measured
  technique: baseline    # a registered experiment (keras-efficient demo --list)
  variants: null         # a subset of its variants, or null for all
  dataset: digits        # digits (the demo experiments) | ag_news (technique bert_agnews)
  image_size: 8
  params: {}             # technique hyperparameters, free-form
```

`load(path)` validates every key and type against `SCHEMA` and fills defaults;
an unknown key or a wrong type raises `ConfigError` naming the key and the file.
`run(config, out_dir)` hands it to the runner of its `task.dataset`, which rejects
a key that cannot apply to its technique the same way.
"""

import copy
import dataclasses
import importlib
import pathlib

import yaml

from keras_efficient.distribute.strategy import STRATEGY_KINDS

# task.dataset -> the module whose `run_config(config, out_dir)` runs such configs.
RUNNERS = {"digits": "keras_efficient.demo.runner", "ag_news": "keras_efficient.recipes.bert.run"}


@dataclasses.dataclass(frozen=True)
class Field:
    """One config key: its accepted types, default, and optional allowed values."""

    types: tuple
    default: object
    choices: tuple = ()


SCHEMA = {
    "runtime": {
        "strategy": Field((str,), "auto", STRATEGY_KINDS),
        "tpu": Field((str, type(None)), None),
        "mixed_precision": Field((str,), "float32",
                                 ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16")),
        "jit_compile": Field((bool, str), "auto"),
        "steps_per_execution": Field((int,), 1),
    },
    "trainer": {
        "optimizer": Field((str, type(None)), None),
        "learning_rate": Field((float, int, type(None)), None),
        "epochs": Field((int, type(None)), None),
        "batch_size": Field((int,), 64),
        "seeds": Field((list,), [0, 1, 2]),
    },
    "task": {
        "technique": Field((str,), "baseline"),
        "variants": Field((list, type(None)), None),
        "dataset": Field((str,), "digits", tuple(RUNNERS)),
        "image_size": Field((int,), 8),
        "params": Field((dict,), {}),
    },
}


class ConfigError(ValueError):
    """A config file with an unknown key, a wrong type or a bad value."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A validated config: three dicts with every key present, and the source path."""

    runtime: dict
    trainer: dict
    task: dict
    path: str = "<dict>"


def _type_names(types):
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list",
             dict: "mapping", type(None): "null"}
    return " or ".join(names[t] for t in types)


def _check_value(block, key, value, field, source):
    # YAML booleans are ints in Python: never accept a bool where a number is meant.
    wrong_bool = isinstance(value, bool) and bool not in field.types
    if wrong_bool or not isinstance(value, field.types):
        raise ConfigError(
            f"{source}: key `{block}.{key}` must be {_type_names(field.types)}; "
            f"received {value!r} ({type(value).__name__})."
        )
    if field.choices and isinstance(value, str) and value not in field.choices:
        raise ConfigError(
            f"{source}: key `{block}.{key}` must be one of {list(field.choices)}; "
            f"received {value!r}."
        )


def _reject_unknown(values, allowed, prefix, source):
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        where = f"in `{prefix[:-1]}`" if prefix else "at the top level"
        raise ConfigError(f"{source}: unknown key `{prefix}{unknown[0]}`. Valid keys {where}: "
                          f"{sorted(allowed)}.")


def validate(raw, source="<dict>"):
    """Validate a config mapping and fill defaults; return an `ExperimentConfig`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with blocks {list(SCHEMA)}; "
                          f"received {type(raw).__name__}.")
    _reject_unknown(raw, SCHEMA, "", source)
    blocks = {}
    for block, fields in SCHEMA.items():
        values = raw.get(block) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: key `{block}` must be a mapping; received "
                              f"{values!r}.")
        _reject_unknown(values, fields, f"{block}.", source)
        filled = {}
        for key, field in fields.items():
            # A copy of a mutable default, so that editing one config edits no other.
            value = values[key] if key in values else copy.deepcopy(field.default)
            _check_value(block, key, value, field, source)
            filled[key] = value
        blocks[block] = filled
    _check_semantics(blocks, source)
    return ExperimentConfig(path=source, **blocks)


def _check_semantics(blocks, source):
    jit = blocks["runtime"]["jit_compile"]
    if isinstance(jit, str) and jit != "auto":
        raise ConfigError(f"{source}: key `runtime.jit_compile` must be true, false or "
                          f"'auto'; received {jit!r}.")
    positive = [("runtime", "steps_per_execution"), ("trainer", "epochs"),
                ("trainer", "batch_size"), ("trainer", "learning_rate"),
                ("task", "image_size")]
    for block, key in positive:
        if blocks[block][key] is not None and blocks[block][key] <= 0:
            raise ConfigError(f"{source}: key `{block}.{key}` must be > 0; received "
                              f"{blocks[block][key]!r}.")
    seeds = blocks["trainer"]["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{source}: key `trainer.seeds` must be a non-empty list of ints; "
                          f"received {seeds!r}.")


def load(path):
    """Read and validate a YAML experiment config.

    Args:
        path: path of the YAML file.

    Returns:
        An `ExperimentConfig`.

    Raises:
        ConfigError: (a `ValueError`) naming the offending key and the file.
        FileNotFoundError: when the file does not exist.

    Example:

    >>> config = load("tpu_configs/digits_baseline.yaml")
    >>> config.trainer["epochs"]
    20
    """
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    return validate(raw, source=str(path))


def run(config, out_dir):
    """Run a validated `ExperimentConfig` with the runner of its `task.dataset`
    (see `RUNNERS`); write the report to `out_dir` and return the exit status."""
    runner = importlib.import_module(RUNNERS[config.task["dataset"]])
    return runner.run_config(config, out_dir)
