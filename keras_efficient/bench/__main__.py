"""`python -m keras_efficient.bench [NAMES]`: the same as `keras-efficient bench`."""

import sys

from keras_efficient.bench.base import main

sys.exit(main())
