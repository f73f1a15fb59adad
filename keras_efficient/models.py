"""Public `keras_efficient.models` namespace: re-exports from the technique folders."""
