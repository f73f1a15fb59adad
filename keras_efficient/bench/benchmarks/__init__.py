"""Benchmarks for `keras-efficient bench`: one module per technique, each defining
`BENCHMARKS`, a list of `keras_efficient.bench.base.Benchmark`."""
