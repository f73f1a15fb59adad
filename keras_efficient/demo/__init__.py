"""`keras-efficient demo`: the experiment contract (`base`), the runner and the
report; the experiments themselves live in `keras_efficient.demo.experiments`."""
