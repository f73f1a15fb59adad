"""Public `keras_efficient.callbacks` namespace: re-exports from the technique folders."""

from keras_efficient.curriculum.example_statistics import ExampleStatistics
from keras_efficient.curriculum.progressive_resizing import ProgressiveResizing
from keras_efficient.curriculum.sequence_length_warmup import SequenceLengthWarmup
from keras_efficient.distribute.backup import BackupAndRestore
from keras_efficient.schedules.plateau import ReduceLROnPlateau
from keras_efficient.ssl.knn_accuracy import KNNAccuracy
