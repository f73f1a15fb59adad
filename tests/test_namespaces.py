"""Every namespace module exports exactly the public names declared at their definitions.

A public name is declared where it is defined, as Keras's `keras_export` does:
`@register("keras_efficient.layers.DropBlock2D")` above a serializable class,
`@export("keras_efficient.layers.stochastic_depth_survival")` above a function
(or `export(path)(CONSTANT)` after a constant); the namespace module imports
it. These tests fail, saying what to add, when the two disagree.
"""

import importlib
import inspect
import pathlib

import keras
import pytest

import keras_efficient
import keras_efficient.testing  # not imported by `keras_efficient` itself
from keras_efficient import utils

#: The public namespaces: modules whose public names are exactly the declared ones.
NAMESPACES = (
    "keras_efficient",
    "keras_efficient.callbacks",
    "keras_efficient.curriculum",
    "keras_efficient.curriculum.pacing",
    "keras_efficient.data",
    "keras_efficient.distribute",
    "keras_efficient.federated",
    "keras_efficient.layers",
    "keras_efficient.losses",
    "keras_efficient.models",
    "keras_efficient.recipes",
    "keras_efficient.recipes.bert",
    "keras_efficient.recipes.in_context",
    "keras_efficient.schedules",
    "keras_efficient.testing",
)

_ROOT = pathlib.Path(keras_efficient.__file__).parent


def _source_file(module_name):
    module = importlib.import_module(module_name)
    return pathlib.Path(module.__file__).relative_to(_ROOT.parent)


#: Namespaces that define their public objects themselves (and import helpers).
_DEFINING = {"keras_efficient.curriculum.pacing"}


def _exported(namespace):
    """{name: object} of a namespace's public names (submodules aside).

    In a namespace that defines its objects, only the classes and functions
    defined there count, not what it imports to build them.
    """
    module = importlib.import_module(namespace)
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value)
            and (namespace not in _DEFINING
                 or getattr(value, "__module__", None) == namespace)}


def _declared(namespace):
    return {path[len(namespace) + 1:]: value for path, value in utils.PUBLIC_API.items()
            if path.rpartition(".")[0] == namespace}


def _definition(value):
    module = getattr(value, "__module__", None)
    return f"{module.replace('.', '/')}.py" if module else "its module"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_namespace__exports_exactly_the_declared_names(namespace):
    exported, declared = _exported(namespace), _declared(namespace)
    problems = []
    for name in sorted(set(exported) - set(declared)):
        value = exported[name]
        decorator = ("register" if inspect.isclass(value) and hasattr(value, "get_config")
                     else "export")
        problems.append(
            f"{namespace}.{name} is exported by {_source_file(namespace)} but not declared: "
            f'write @{decorator}("{namespace}.{name}") at its definition in '
            f"{_definition(value)} (an existing @register takes the path as its argument; "
            f'a constant gets `export("{namespace}.{name}")({name})` after it)')
    for name in sorted(set(declared) - set(exported)):
        value = declared[name]
        problems.append(
            f"{namespace}.{name} is declared in {_definition(value)} but not exported: add "
            f"`from {getattr(value, '__module__', '<its module>')} import {name}` "
            f"to {_source_file(namespace)}")
    for name in sorted(set(declared) & set(exported)):
        if declared[name] is not exported[name]:
            problems.append(f"{namespace}.{name} is not the object declared under that path")
    assert not problems, "\n".join(problems)


def test_namespace__every_declared_path_is_in_a_namespace():
    namespaces = {path.rpartition(".")[0] for path in utils.PUBLIC_API}
    unknown = sorted(namespaces - set(NAMESPACES))
    assert not unknown, (f"public paths under modules that are not namespaces: {unknown}; "
                         f"add the namespace to NAMESPACES in {__file__}")


def test_namespace__registered_names_are_unchanged():
    # `register` with a public path saves under the same name as bare `register`.
    from keras_efficient.layers import DropBlock2D

    assert utils.PUBLIC_API["keras_efficient.layers.DropBlock2D"] is DropBlock2D
    assert keras.saving.get_registered_object("keras_efficient>DropBlock2D") is DropBlock2D
    assert keras.saving.get_registered_name(DropBlock2D) == "keras_efficient>DropBlock2D"
