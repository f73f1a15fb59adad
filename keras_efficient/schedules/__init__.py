"""Public `keras_efficient.schedules` namespace: learning-rate schedules that
Keras lacks (Keras's own CosineDecay, CosineDecayRestarts, ExponentialDecay and
PiecewiseConstantDecay are used as they are). Any of them also anneals a
distillation temperature: `ke.models.Distiller(..., temperature=schedule)`."""

from keras_efficient.schedules.annealing import Annealing
from keras_efficient.schedules.plateau import ScaledSchedule
from keras_efficient.schedules.step_decay import StepDecay
from keras_efficient.schedules.warmup import WarmUp
