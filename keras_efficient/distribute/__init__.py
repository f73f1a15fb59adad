"""Public `keras_efficient.distribute` namespace: the strategy factory, the XLA
policy, and multi-worker training (`fit`, sharding, exact backup and restore)."""

from keras_efficient.distribute.backup import BackupAndRestore
from keras_efficient.distribute.describe import describe
from keras_efficient.distribute.describe import format_description
from keras_efficient.distribute.distribution import get_distribution
from keras_efficient.distribute.fit import fit
from keras_efficient.distribute.multi_worker import is_chief
from keras_efficient.distribute.multi_worker import patch_keras_for_multi_worker
from keras_efficient.distribute.multi_worker import task_info
from keras_efficient.distribute.settings import TrainingSettings
from keras_efficient.distribute.settings import recommended_settings
from keras_efficient.distribute.sharding import SHARD_POLICIES
from keras_efficient.distribute.sharding import shard_dataset
from keras_efficient.distribute.strategy import STRATEGY_KINDS
from keras_efficient.distribute.strategy import StrategyChoice
from keras_efficient.distribute.strategy import choose_strategy
from keras_efficient.distribute.strategy import get_strategy
from keras_efficient.distribute.xla import JIT_ENVIRONMENT_VARIABLE
from keras_efficient.distribute.xla import jit_compile_for
from keras_efficient.distribute.xla import jit_compile_for_device
