"""Public `keras_efficient.data` namespace: the embedded digits, label subsets,
TFDS loaders and batch transforms for `tf.data` pipelines."""

from keras_efficient.data.digits import Digits
from keras_efficient.data.digits import load_digits
from keras_efficient.data.subsets import few_label_subset
from keras_efficient.data.subsets import group_classes
from keras_efficient.data.tfds import TFDS_DATASETS
from keras_efficient.data.tfds import load_tfds
