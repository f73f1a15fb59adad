"""keras_efficient: the advanced learning techniques of the Efficient Deep
Learning book as drop-in Keras 3 layers, losses, schedules, callbacks and models.

Namespaces follow Keras: `ke.layers`, `ke.losses`, `ke.models`, `ke.schedules`,
`ke.callbacks`, `ke.curriculum`, `ke.data`, `ke.distribute`, `ke.config`,
`ke.recipes`.
"""

__version__ = "0.1.0"

from keras_efficient import callbacks  # noqa: E402
from keras_efficient import config  # noqa: E402
from keras_efficient import curriculum  # noqa: E402
from keras_efficient import data  # noqa: E402
from keras_efficient import distribute  # noqa: E402
from keras_efficient import layers  # noqa: E402
from keras_efficient import losses  # noqa: E402
from keras_efficient import models  # noqa: E402
from keras_efficient import recipes  # noqa: E402
from keras_efficient import schedules  # noqa: E402
