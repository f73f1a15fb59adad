"""`python -m keras_efficient.bench [NAMES]`: the same as `keras-efficient bench`."""

import sys

from keras_efficient.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
