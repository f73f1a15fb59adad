"""Public `keras_efficient.losses` namespace: re-exports from the technique folders."""
