"""Public `keras_efficient.distribute` namespace: the strategy factory, the XLA
policy, and multi-worker training (`fit`, sharding, exact backup and restore).

`get_strategy` and `fit` install the multi-worker fixes of
`keras_efficient.distribute.multi_worker` themselves; the records that
`choose_strategy` and `recommended_settings` return (`StrategyChoice`,
`TrainingSettings`) and the constants stay in their modules."""

from keras_efficient.distribute.backup import BackupAndRestore
from keras_efficient.distribute.describe import describe
from keras_efficient.distribute.describe import format_description
from keras_efficient.distribute.distribution import get_distribution
from keras_efficient.distribute.fit import fit
from keras_efficient.distribute.multi_worker import is_chief
from keras_efficient.distribute.multi_worker import task_info
from keras_efficient.distribute.settings import recommended_settings
from keras_efficient.distribute.sharding import shard_dataset
from keras_efficient.distribute.strategy import choose_strategy
from keras_efficient.distribute.strategy import get_strategy
from keras_efficient.distribute.xla import jit_compile_for
