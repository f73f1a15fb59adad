"""AG News for the book's BERT project: description text, tokenized in `tf.data`."""

import tensorflow as tf

from keras_efficient.data.tfds import load_tfds
from keras_efficient.utils import export
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_path
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.recipes.bert.load_ag_news")
def load_ag_news(preprocessor, split, batch_size=256, *, shuffle=None, seed=0,
                 take=None, drop_remainder=False, data_dir=None, download=True):
    """One split of AG News (`ag_news_subset`) as batches ready for the BERT classifier.

    As in the book: only the `description` field, the 7,600-example `test` split
    serves as validation, batches of 256, and the text is tokenized inside
    `tf.data` (by the encoder's `preprocessor`, see `load_bert_preprocessor`),
    so the accelerator only sees integer tensors.

    Args:
        preprocessor: maps a batch of `(strings, labels)` to `(inputs, labels)`.
        split: "train", "test", or any TFDS split string ("train[:1%]").
        batch_size: examples per batch.
        shuffle: shuffle the examples each epoch (default: only for "train").
        seed: shuffle seed.
        take: keep only the first `take` examples (smoke runs).
        drop_remainder: drop the last partial batch (static shapes, e.g. TPU).
        data_dir, download: passed to TFDS.

    Returns:
        A `tf.data.Dataset` of `({"token_ids", "segment_ids", "padding_mask"}, label)`.
    """
    validate_key("split", split)
    validate_size("batch_size", batch_size)
    validate_seed("seed", seed)
    if take is not None:
        validate_size("take", take)
    validate_path("data_dir", data_dir, allow_none=True)
    dataset = load_tfds("ag_news", split, data_dir=data_dir, download=download)
    if take is not None:
        dataset = dataset.take(validate_size("take", take))
    if split == "train" if shuffle is None else shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
