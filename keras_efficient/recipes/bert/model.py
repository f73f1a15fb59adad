"""The book's AG News classifier on a BERT encoder, and its weight shuffling."""

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.recipes.bert.encoders import encoder_handle
from keras_efficient.recipes.bert.encoders import load_bert_backbone
from keras_efficient.utils import export
from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.recipes.bert.shuffle_weights")
def shuffle_weights(model, weights=None, seed=None):
    """Randomly permute the values inside each weight tensor of `model`, as the book does.

    Each tensor keeps its shape and its multiset of values (so its distribution:
    mean, scale, sparsity) while the order is destroyed: a fast stand-in for
    re-initializing a network with the statistics of trained weights. The book
    uses it to compare a pre-trained BERT with the same architecture whose
    pre-training is scrambled.

    Args:
        model: a `keras.Model` or layer; its weights are replaced in place.
        weights: list of arrays to permute instead of the model's current
            weights (same shapes as `model.get_weights()`).
        seed: seed of the permutations (None: fresh randomness).

    Example:

    >>> layer = keras.layers.Dense(3)
    >>> layer.build((None, 4))
    >>> shuffle_weights(layer, seed=0)
    """
    if weights is None:
        weights = model.get_weights()
    generator = np.random.default_rng(validate_seed("seed", seed))
    model.set_weights([generator.permutation(np.ravel(w)).reshape(np.shape(w))
                       for w in weights])


#: TF Hub BERT preprocessor keys -> keras-hub `BertBackbone` input names.
TFHUB_INPUT_NAMES = {"input_word_ids": "token_ids", "input_type_ids": "segment_ids",
                     "input_mask": "padding_mask"}


@register
class BertClassifier(keras.Model):
    """A functional model that also takes the TF Hub preprocessor's input keys.

    Built by `get_bert_model`; a dict with TF Hub's `input_word_ids`,
    `input_type_ids`, `input_mask` is renamed to keras-hub's `token_ids`,
    `segment_ids`, `padding_mask` before Keras checks the inputs.
    """

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict) and set(inputs) & set(TFHUB_INPUT_NAMES):
            if set(inputs) & set(TFHUB_INPUT_NAMES.values()):
                raise ValueError(
                    "Expected the inputs of one preprocessor: keras-hub's "
                    f"{sorted(TFHUB_INPUT_NAMES.values())} or TF Hub's "
                    f"{sorted(TFHUB_INPUT_NAMES)}. Received: keys {sorted(inputs)}")
            inputs = {TFHUB_INPUT_NAMES.get(key, key): value for key, value in inputs.items()}
        return super().__call__(inputs, *args, **kwargs)


@export("keras_efficient.recipes.bert.get_bert_model")
def get_bert_model(
    encoder_size,
    learning_rate=2e-5,
    keep_tfhub_weights=True,
    num_classes=4,
    *,
    handle=None,
    backbone=None,
    hidden_units=(200, 100, 50),
    dropout=0.1,
    seed=None,
    jit_compile="auto",
    steps_per_execution=1,
):
    """The book's BERT text classifier, built and compiled in the active strategy's scope.

    Pooled BERT output -> Dense 200/100/50 (ReLU) -> Dense(`num_classes`) softmax;
    Adam, sparse categorical cross-entropy, accuracy. The encoder is a keras-hub
    `BertBackbone` holding the TF Hub weights (see `load_bert_backbone`), so the
    whole model fine-tunes with Adam. Inputs are the preprocessor's dict
    (`token_ids`, `segment_ids`, `padding_mask`, see `load_bert_preprocessor`),
    or the TF Hub preprocessor's (`input_word_ids`, `input_type_ids`,
    `input_mask`, the book's notebook), renamed on the way in.

    Args:
        encoder_size: one of `BERT_ENCODERS` ("bert-small", "bert-base").
        learning_rate: Adam's learning rate (> 0).
        keep_tfhub_weights: False shuffles the encoder's pre-trained weights with
            `shuffle_weights` (the book's "no pre-training" baseline).
        num_classes: number of classes (>= 2; AG News has 4).
        handle: load the encoder from here instead of the book's TF Hub handle for
            `encoder_size` (a local SavedModel, a keras-hub preset or preset
            directory, see `load_bert_backbone`).
        backbone: use this keras-hub `BertBackbone` (e.g. from
            `pretrain_masked_lm`) as the encoder, shared, not copied, instead of
            loading one (then `handle` must be None).
        hidden_units: widths of the ReLU layers of the head.
        dropout: dropout inside the loaded encoder (a given `backbone` keeps its own).
        seed: seed of the weight shuffling.
        jit_compile, steps_per_execution: passed to `compile`.

    Returns:
        A compiled `keras.Model`.

    Example:

    >>> model = get_bert_model("bert-small", learning_rate=8e-5)  # downloads
    """
    if backbone is not None and handle is not None:
        raise ValueError(f"Invalid value received for argument `backbone`: it replaces "
                         f"the encoder that `handle` would load; pass one of them. "
                         f"Received: handle={handle!r}")
    handle = encoder_handle(encoder_size, handle)
    validate_number("learning_rate", learning_rate, 0, low_inclusive=False)
    validate_size("num_classes", num_classes, low=2)
    validate_number("dropout", dropout, 0, 1, high_inclusive=False)
    validate_seed("seed", seed)
    # Keras would accept 0 here and fail later with "range() arg 3 must not be zero".
    validate_size("steps_per_execution", steps_per_execution)
    for units in hidden_units:
        validate_size("hidden_units", units)
    # The active strategy (TPU, mirrored, default) must own every variable.
    with tf.distribute.get_strategy().scope():
        if backbone is None:
            backbone = load_bert_backbone(handle, dropout=dropout)
        if not keep_tfhub_weights:
            shuffle_weights(backbone, seed=seed)
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ("token_ids", "segment_ids", "padding_mask")}
        x = backbone(inputs)["pooled_output"]
        for units in hidden_units:
            x = keras.layers.Dense(units, activation="relu")(x)
        # float32 probabilities under mixed precision.
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
        model = BertClassifier(inputs, outputs, name=f"{encoder_size}_classifier")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
    return model
