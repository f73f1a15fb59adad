"""keras_efficient: the advanced learning techniques of the Efficient Deep
Learning book as drop-in Keras 3 layers, losses, schedules, callbacks and models.

Namespaces follow Keras: `ke.layers`, `ke.losses`, `ke.models`, `ke.schedules`,
`ke.callbacks`, `ke.curriculum`, `ke.data`, `ke.distribute`, `ke.config`,
`ke.recipes`.
"""

__version__ = "0.1.0"

from keras_efficient import callbacks
from keras_efficient import config
from keras_efficient import curriculum
from keras_efficient import data
from keras_efficient import distribute
from keras_efficient import federated
from keras_efficient import layers
from keras_efficient import losses
from keras_efficient import models
from keras_efficient import recipes
from keras_efficient import schedules
