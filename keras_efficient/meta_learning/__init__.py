"""Meta-learning and few-shot learning: episodes, optimization-based and metric-based
methods."""
