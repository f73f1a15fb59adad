"""`python -m benchmarks [NAMES]`: the same as `keras-efficient bench`."""

import sys

from keras_efficient.benchmarking import main

sys.exit(main())
