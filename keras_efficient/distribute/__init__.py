"""Public `keras_efficient.distribute` namespace: the strategy factory and the XLA
policy."""

from keras_efficient.distribute.describe import describe
from keras_efficient.distribute.describe import format_description
from keras_efficient.distribute.strategy import STRATEGY_KINDS
from keras_efficient.distribute.strategy import StrategyChoice
from keras_efficient.distribute.strategy import choose_strategy
from keras_efficient.distribute.strategy import get_strategy
from keras_efficient.distribute.xla import JIT_ENVIRONMENT_VARIABLE
from keras_efficient.distribute.xla import jit_compile_for
from keras_efficient.distribute.xla import jit_compile_for_device
