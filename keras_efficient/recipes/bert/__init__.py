"""The book's BERT project on Keras 3: AG News with BERT-Small and BERT-Base,
pre-trained vs shuffled weights (see README.md in this folder). The offline smoke
run's scaffolding is in `keras_efficient.testing`."""

from keras_efficient.recipes.bert.data import load_ag_news
from keras_efficient.recipes.bert.encoders import BERT_ENCODERS
from keras_efficient.recipes.bert.encoders import BertEncoderHandles
from keras_efficient.recipes.bert.encoders import load_bert_backbone
from keras_efficient.recipes.bert.encoders import load_bert_preprocessor
from keras_efficient.recipes.bert.encoders import tfhub_to_keras_hub_name
from keras_efficient.recipes.bert.masked_lm import pretrain_masked_lm
from keras_efficient.recipes.bert.model import get_bert_model
from keras_efficient.recipes.bert.model import shuffle_weights
from keras_efficient.recipes.bert.run import BOOK_LEARNING_RATES
from keras_efficient.recipes.bert.run import BOOK_RESULTS
from keras_efficient.recipes.bert.run import VARIANTS
from keras_efficient.recipes.bert.run import BertRunResult
from keras_efficient.recipes.bert.run import compare_pretrained_vs_shuffled
from keras_efficient.recipes.bert.run import format_table
from keras_efficient.recipes.bert.run import run_config
