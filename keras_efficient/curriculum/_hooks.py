"""Wrappers that callbacks put around a model's `train_step` or
`compute_metrics` for the duration of `fit` (Keras has no hook there).

Several callbacks may wrap the same method; `add_hook` installs one dispatcher
on the model instance that calls the wrappers in the order they were added.
The dispatcher stays when its last wrapper is removed (it then calls the
method itself): Keras captures `model.train_step` when it makes a train
function, and a kept function must find the current wrappers if it retraces.
A wrapper is `wrapper(original, *args, **kwargs)`. Wrappers take effect when
the train function is (re)traced, so callers make a fresh one with
`model.make_train_function(force=True)`.
"""

import functools


def add_hook(model, method, wrapper):
    """Wrap `model.<method>` with `wrapper` (innermost wrappers added first)."""
    dispatch = model.__dict__.get(method)
    if not hasattr(dispatch, "hooks"):
        original = getattr(model, method)

        def dispatch(*args, **kwargs):
            call = original
            for hook in dispatch.hooks:
                call = functools.partial(hook, call)
            return call(*args, **kwargs)

        dispatch.hooks = []
        setattr(model, method, dispatch)
    dispatch.hooks.append(wrapper)


def remove_hook(model, method, wrapper):
    """Undo `add_hook(model, method, wrapper)`; a no-op if it is not installed."""
    dispatch = model.__dict__.get(method)
    if wrapper not in getattr(dispatch, "hooks", ()):
        return
    dispatch.hooks.remove(wrapper)
