"""Public `keras_efficient.curriculum` namespace: scoring, pacing and curriculum
datasets."""

from keras_efficient.curriculum import pacing
from keras_efficient.curriculum.curriculum_dataset import CurriculumDataset
from keras_efficient.curriculum.example_statistics import ExampleStatistics
from keras_efficient.curriculum.progressive_resizing import ProgressiveResizing
from keras_efficient.curriculum.scoring import rarity_scores
from keras_efficient.curriculum.scoring import teacher_scores
from keras_efficient.curriculum.sequence_length_warmup import SequenceLengthWarmup
