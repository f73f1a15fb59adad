"""`keras-efficient bench`: the benchmark contract and runner (`base`); the
benchmarks themselves live in `keras_efficient.bench.benchmarks`."""
