"""Public `keras_efficient.layers` namespace: re-exports from the technique folders."""
from keras_efficient.distillation.subclass_head import SubclassHead
from keras_efficient.meta_learning.cosine_classifier import CosineClassifier
from keras_efficient.regularization.dropblock import DropBlock2D
from keras_efficient.regularization.stochastic_depth import StochasticDepth
from keras_efficient.regularization.stochastic_depth import stochastic_depth_survival
from keras_efficient.ssl.augmentation import SimCLRAugmentation
from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.random_resized_crop import RandomResizedCrop
