"""Public `keras_efficient.curriculum` namespace: scoring, pacing and curriculum
datasets."""
