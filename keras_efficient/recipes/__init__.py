"""Public `keras_efficient.recipes` namespace: end-to-end reproductions of the
book's experiments."""

from keras_efficient.recipes import bert
from keras_efficient.recipes import in_context
