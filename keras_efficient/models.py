"""Public `keras_efficient.models` namespace: re-exports from the technique folders."""
from keras_efficient.distillation.distiller import Distiller
from keras_efficient.distillation.subclass_distiller import SubclassDistiller
from keras_efficient.distillation.subclass_teacher import SubclassTeacher
from keras_efficient.regularization.resnet import build_resnet
from keras_efficient.sam.sharpness_aware_minimization import SharpnessAwareMinimization
from keras_efficient.ssl.byol import BYOL
from keras_efficient.ssl.evaluation import fine_tuning_classifier
from keras_efficient.ssl.evaluation import linear_probe
from keras_efficient.ssl.simclr import SimCLR
from keras_efficient.ssl.simsiam import SimSiam
from keras_efficient.vae.vae import VAE
