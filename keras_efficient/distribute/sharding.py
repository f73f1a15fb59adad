"""Explicit dataset sharding for multi-worker training."""

import tensorflow as tf

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice

#: `shard_policy` names and the `tf.data` policies they stand for.
SHARD_POLICIES = {
    "auto": tf.data.experimental.AutoShardPolicy.AUTO,
    "data": tf.data.experimental.AutoShardPolicy.DATA,
    "file": tf.data.experimental.AutoShardPolicy.FILE,
    "off": tf.data.experimental.AutoShardPolicy.OFF,
}

# Source ops that read files: what FILE sharding splits between workers.
_FILE_READERS = ("TFRecordDataset", "TextLineDataset", "FixedLengthRecordDataset",
                 "ArrayRecordDataset")


def _dataset_ops(dataset):
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


@export("keras_efficient.distribute.shard_dataset")
def shard_dataset(dataset, policy="auto"):
    """Set how `dataset` is split between workers, refusing splits that can't work.

    Args:
        dataset: a batched `tf.data.Dataset` (batches of the global batch size).
        policy: "data" (every worker reads all, keeps its share of each batch:
            works for any dataset), "file" (each worker reads its own files: needs a
            dataset read from files), "auto" (FILE where possible, else DATA, as
            `tf.data` does) or "off" (every worker sees every batch: only for
            datasets that are already split per worker).

    Returns:
        The dataset with the policy in its options.

    Raises:
        ValueError: for an unknown policy, or "file" on a dataset that reads no files.

    Example:

    >>> dataset = shard_dataset(tf.data.Dataset.range(8).batch(4), "data")
    """
    validate_choice("policy", policy, SHARD_POLICIES)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError("Invalid type received for argument `dataset`. Expected a "
                        f"tf.data.Dataset. Received: {type(dataset).__name__}")
    if policy == "file":
        readers = sorted(_dataset_ops(dataset) & set(_FILE_READERS))
        if not readers:
            raise ValueError(
                "Invalid value received for argument `policy`: 'file' shards the files a "
                f"dataset reads ({', '.join(_FILE_READERS)}), and this dataset reads none "
                "(it is built from memory or a generator). Use policy='data'."
            )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = SHARD_POLICIES[policy]
    return dataset.with_options(options)
