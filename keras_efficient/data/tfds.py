"""TensorFlow Datasets loaders for the notebooks (they download; tests mock them)."""

import dataclasses

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_path


@dataclasses.dataclass(frozen=True)
class TfdsDataset:
    """Where a named dataset lives in TFDS and which features to take."""

    tfds_name: str
    features: tuple
    train_split: str
    test_split: str


#: The datasets the notebooks use, by the name users pass to `load_tfds`.
TFDS_DATASETS = {
    "cifar10": TfdsDataset("cifar10", ("image", "label"), "train", "test"),
    "stl10": TfdsDataset("stl10", ("image", "label"), "train", "test"),
    "stl10_unlabelled": TfdsDataset("stl10", ("image",), "unlabelled", "test"),
    "oxford_flowers102": TfdsDataset("oxford_flowers102", ("image", "label"), "train", "test"),
    "ag_news": TfdsDataset("ag_news_subset", ("description", "label"), "train", "test"),
    # GLUE's SST-2 test labels are hidden (-1): its validation split is the test set.
    "sst2": TfdsDataset("glue/sst2", ("sentence", "label"), "train", "validation"),
    "omniglot": TfdsDataset("omniglot", ("image", "alphabet", "label"), "train", "test"),
}
export("keras_efficient.data.TFDS_DATASETS")(TFDS_DATASETS)


@export("keras_efficient.data.load_tfds")
def load_tfds(name, split="train", data_dir=None, download=True, shuffle_files=False):
    """Load one split of a named dataset as a `tf.data.Dataset` of tuples.

    Args:
        name: one of `TFDS_DATASETS` (e.g. "ag_news" gives `(description, label)`
            from `ag_news_subset`, as the book's BERT project uses).
        split: "train", "test" (mapped to the dataset's own split names) or any
            TFDS split string such as "train[:10%]".
        data_dir: TFDS data directory (default: TFDS's own).
        download: allow TFDS to download and prepare the data.
        shuffle_files: passed to `tfds.load`.

    Returns:
        A `tf.data.Dataset` of tuples of the named features.
    """
    validate_choice("name", name, TFDS_DATASETS)
    validate_key("split", split)
    validate_path("data_dir", data_dir, allow_none=True)
    import tensorflow_datasets as tfds

    spec = TFDS_DATASETS[name]
    split = {"train": spec.train_split, "test": spec.test_split}.get(split, split)
    dataset = tfds.load(spec.tfds_name, split=split, data_dir=data_dir, download=download,
                        shuffle_files=shuffle_files)
    return dataset.map(lambda example: tuple(example[key] for key in spec.features))
