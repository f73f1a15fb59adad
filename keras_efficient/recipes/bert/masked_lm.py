"""Without a checkpoint: masked language model pre-training of a BERT encoder.

The self-supervised half of the book's BERT project: the encoder learns from
unlabeled text by predicting masked tokens (BERT's MLM objective), then fine-tunes
in the book's classifier (`get_bert_model(..., backbone=backbone)`). Masking and
the MLM head are keras-hub's (`BertMaskedLMPreprocessor`, `BertMaskedLM`).
"""

import math

import keras
import tensorflow as tf

from keras_efficient.recipes.bert.encoders import load_bert_backbone
from keras_efficient.recipes.bert.encoders import load_bert_preprocessor
from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


def _text_dataset(texts):
    """`texts` as an unbatched `tf.data.Dataset` of strings; rejects an empty one."""
    if isinstance(texts, tf.data.Dataset):
        # UNKNOWN cardinality (e.g. after `filter`) is accepted and trusted.
        if int(texts.cardinality()) == 0:
            raise ValueError("Invalid value received for argument `texts`. Expected a "
                             "non-empty dataset of strings. Received an empty dataset.")
        return texts
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"Invalid type received for argument `texts`. Expected a list of "
                        f"strings or a tf.data.Dataset of strings, not one string. "
                        f"Received: texts={texts!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("Invalid value received for argument `texts`. Expected at least "
                         "one string. Received: texts=[]")
    return tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string))


@export("keras_efficient.recipes.bert.pretrain_masked_lm")
def pretrain_masked_lm(
    backbone_or_preset,
    texts,
    *,
    sequence_length=128,
    mask_selection_rate=0.15,
    mask_selection_length=None,
    epochs=1,
    batch_size=32,
    learning_rate=5e-5,
    tokenizer=None,
    steps_per_epoch=None,
    shuffle=True,
    seed=0,
    callbacks=None,
    jit_compile="auto",
    verbose=0,
):
    """Pre-train a BERT encoder on unlabeled text with the masked language model loss.

    BERT's self-supervised objective: `mask_selection_rate` of the tokens of each
    sequence are selected (80% replaced by `[MASK]`, 10% by a random token, 10%
    kept) and the encoder, with keras-hub's MLM head (`BertMaskedLM`), learns to
    predict them. Masks are drawn again every epoch (dynamic masking, as in
    RoBERTa) by keras-hub's `BertMaskedLMPreprocessor` inside `tf.data`. The
    returned backbone is the trained object itself (the MLM head is dropped):
    pass it to `get_bert_model(..., backbone=backbone)` to fine-tune.

    Call it inside the strategy scope that should own the variables.

    Args:
        backbone_or_preset: a keras-hub `BertBackbone` (e.g. randomly initialized:
            pre-training from scratch; trained in place), or anything
            `load_bert_backbone` loads (TF Hub handle or SavedModel directory,
            keras-hub preset name or directory: continued pre-training).
        texts: unlabeled strings, a list or an unbatched `tf.data.Dataset`.
        sequence_length: tokens per sequence, [CLS] and [SEP] included.
        mask_selection_rate: fraction of the tokens selected for prediction, in
            (0, 1) (BERT: 0.15).
        mask_selection_length: most tokens predicted per sequence (default:
            `ceil(sequence_length * mask_selection_rate)`, BERT's
            `max_predictions_per_seq`, 20 for 128 tokens).
        epochs: passes over `texts`.
        batch_size: sequences per step.
        learning_rate: Adam's learning rate (> 0).
        tokenizer: a keras-hub `BertTokenizer`; required when `backbone_or_preset`
            is a backbone, otherwise the encoder's own vocabulary is used.
        steps_per_epoch: batches per epoch; `texts` then repeats as needed
            (default: one pass over `texts` per epoch).
        shuffle: shuffle `texts` each epoch.
        seed: shuffle seed.
        callbacks: passed to `fit`; their `model` is the `BertMaskedLM`.
        jit_compile, verbose: passed to `compile` and `fit`.

    Returns:
        The pre-trained `keras_hub.models.BertBackbone`.

    Example:

    >>> import keras_hub
    >>> tokenizer = keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]",
    ...     "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])
    >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=8, num_layers=1,
    ...     num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    >>> backbone = pretrain_masked_lm(backbone, ["a b c", "c b a"], tokenizer=tokenizer,
    ...                               sequence_length=8)
    >>> model = get_bert_model("bert-small", backbone=backbone)

    Reference:
        J. Devlin et al., *BERT: Pre-training of Deep Bidirectional Transformers for
        Language Understanding*, 2019 (MLM); Y. Liu et al., *RoBERTa*, 2019
        (dynamic masking).
    """
    import keras_hub

    validate_number("mask_selection_rate", mask_selection_rate, 0, 1,
                    low_inclusive=False, high_inclusive=False)
    validate_size("sequence_length", sequence_length, low=3)
    if mask_selection_length is None:
        mask_selection_length = math.ceil(sequence_length * mask_selection_rate)
    validate_number("mask_selection_length", mask_selection_length, 1, sequence_length,
                    integer=True)
    validate_size("epochs", epochs)
    validate_size("batch_size", batch_size)
    if steps_per_epoch is not None:
        validate_size("steps_per_epoch", steps_per_epoch)
    validate_number("learning_rate", learning_rate, 0, low_inclusive=False)
    validate_seed("seed", seed)
    dataset = _text_dataset(texts)

    given_backbone = isinstance(backbone_or_preset, keras_hub.models.BertBackbone)
    if given_backbone and tokenizer is None:
        raise ValueError("Invalid value received for argument `tokenizer`. Expected a "
                         "keras-hub BertTokenizer when `backbone_or_preset` is a "
                         "BertBackbone. Received: tokenizer=None")
    if tokenizer is None:
        tokenizer = load_bert_preprocessor(backbone_or_preset, sequence_length).tokenizer
    # The active strategy (TPU, mirrored, default) must own every variable.
    with tf.distribute.get_strategy().scope():
        # The classifier's loader: TF Hub SavedModels as well as keras-hub presets.
        backbone = (backbone_or_preset if given_backbone
                    else load_bert_backbone(backbone_or_preset))
        masked_lm = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
        # keras-hub's MLM loss (from logits, weighted by the mask) and accuracy.
        masked_lm.compile(optimizer=keras.optimizers.Adam(learning_rate),
                          jit_compile=jit_compile)
    validate_number("sequence_length", sequence_length, 3, backbone.max_sequence_length,
                    integer=True)

    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=sequence_length,
        mask_selection_rate=mask_selection_rate,
        mask_selection_length=mask_selection_length)
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if steps_per_epoch is not None:
        # Epochs of `steps_per_epoch` batches each, from one endless iterator.
        dataset = dataset.repeat()
    # Tokenize and mask in tf.data: the accelerator only sees integer tensors.
    dataset = (dataset.batch(batch_size)
               .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    # A tf.data pipeline: Keras would warn that it ignores shuffle=True.
    masked_lm.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=verbose, shuffle=False)
    return masked_lm.backbone
