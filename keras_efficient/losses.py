"""Public `keras_efficient.losses` namespace: re-exports from the technique folders."""
from keras_efficient.distillation.knowledge_distillation import KnowledgeDistillation
from keras_efficient.distillation.subclass_auxiliary_loss import SubclassAuxiliaryLoss
from keras_efficient.meta_learning.contrastive_loss import ContrastiveLoss
from keras_efficient.meta_learning.triplet_loss import TripletLoss
from keras_efficient.regularization.label_smoothing import SparseCategoricalCrossentropy
from keras_efficient.ssl.byol_loss import BYOLLoss
from keras_efficient.ssl.nt_xent import NTXent
from keras_efficient.ssl.simsiam_loss import SimSiamLoss
