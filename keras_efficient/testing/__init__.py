"""Test helpers for keras_efficient objects (and users' own): the shared harness,
and the offline smoke run of the BERT recipe (a tiny random encoder, mock data)."""

from keras_efficient.recipes.bert.run import SMOKE_BUDGET
from keras_efficient.recipes.bert.run import smoke_environment
from keras_efficient.recipes.bert.run import write_tiny_encoder
from keras_efficient.testing.harness import LAYER_CHECKS
from keras_efficient.testing.harness import LOSS_CHECKS
from keras_efficient.testing.harness import MODEL_CHECKS
from keras_efficient.testing.harness import SCHEDULE_CHECKS
from keras_efficient.testing.harness import check_layer
from keras_efficient.testing.harness import check_loss
from keras_efficient.testing.harness import check_model
from keras_efficient.testing.harness import check_schedule
from keras_efficient.testing.harness import dtype_policy
from keras_efficient.testing.harness import gradients
from keras_efficient.testing.harness import on_two_devices
from keras_efficient.testing.harness import split_cpu
from keras_efficient.testing.harness import two_replica_strategy
from keras_efficient.testing.notebooks import run_notebook
