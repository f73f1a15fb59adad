"""Public `keras_efficient.callbacks` namespace: re-exports from the technique folders."""
