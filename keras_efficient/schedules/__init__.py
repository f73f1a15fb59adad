"""Public `keras_efficient.schedules` namespace: learning-rate and temperature
schedules that Keras lacks (Keras's own CosineDecay, CosineDecayRestarts,
ExponentialDecay and PiecewiseConstantDecay are used as they are)."""
