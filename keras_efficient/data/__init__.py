"""Public `keras_efficient.data` namespace: the embedded digits, label subsets,
TFDS loaders and batch transforms for `tf.data` pipelines."""

from keras_efficient.data.digits import Digits
from keras_efficient.data.digits import load_digits
from keras_efficient.data.subsets import few_label_subset
from keras_efficient.data.subsets import group_classes
from keras_efficient.data.subsets import symmetric_label_noise
from keras_efficient.data.tfds import TFDS_DATASETS
from keras_efficient.data.tfds import load_tfds
from keras_efficient.meta_learning.episodes import episode_dataset
from keras_efficient.meta_learning.episodes import omniglot_classes
from keras_efficient.meta_learning.episodes import rotate_classes
from keras_efficient.meta_learning.episodes import rotated_digits
from keras_efficient.meta_learning.episodes import sinusoid_episodes
from keras_efficient.meta_learning.siamese_network import contrastive_pairs
from keras_efficient.regularization.cutmix import CutMix
from keras_efficient.regularization.mixup import MixUp
from keras_efficient.ssl.jigsaw_pretext import JigsawPretext
from keras_efficient.ssl.relative_patch_pretext import RelativePatchPretext
from keras_efficient.ssl.rotation_pretext import RotationPretext
