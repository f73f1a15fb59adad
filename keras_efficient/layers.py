"""Public `keras_efficient.layers` namespace: re-exports from the technique folders."""
