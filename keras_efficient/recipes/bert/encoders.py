"""BERT encoders for the book's AG News project, fine-tunable in Keras 3.

The book loads its encoders with `hub.KerasLayer`, which cannot live in a Keras 3
model (tensorflow_hub 0.16 builds on tf_keras), and `keras.layers.TFSMLayer` cannot
be trained with Adam (its variables are named like `Variable:0`, which gives invalid
optimizer slot names). So a TF Hub BERT SavedModel is read with
`tf.saved_model.load` (no tf_keras), its variables are mapped by name onto a
Keras-native keras-hub `BertBackbone` of the same size, and the tokenizer is built
from the SavedModel's own WordPiece vocabulary. keras-hub presets (names or local
preset directories) load directly.
"""

import dataclasses
import functools
import os
import re

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


@export("keras_efficient.recipes.bert.BertEncoderHandles")
@dataclasses.dataclass(frozen=True)
class BertEncoderHandles:
    """Where one of the book's encoders lives.

    Attributes:
        tfhub: the TF Hub handle the book uses (a BERT SavedModel).
        preprocess: the TF Hub preprocessing model the book pairs with it (used
            here only as a fallback source of the WordPiece vocabulary).
        keras_hub_preset: the keras-hub preset with the same architecture and
            pre-trained weights.
    """

    tfhub: str
    preprocess: str
    keras_hub_preset: str


PREPROCESS_HANDLE = "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"

#: The book's encoders. Its "BERT-Small" (L-2, H-128, A-2) is keras-hub's
#: `bert_tiny_en_uncased`; keras-hub's `bert_small_en_uncased` is a larger model.
BERT_ENCODERS = {
    "bert-small": BertEncoderHandles(
        tfhub="https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-2_H-128_A-2/2",
        preprocess=PREPROCESS_HANDLE,
        keras_hub_preset="bert_tiny_en_uncased",
    ),
    "bert-base": BertEncoderHandles(
        tfhub="https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/4",
        preprocess=PREPROCESS_HANDLE,
        keras_hub_preset="bert_base_en_uncased",
    ),
}
export("keras_efficient.recipes.bert.BERT_ENCODERS")(BERT_ENCODERS)

# TF Hub / TF Model Garden `BertEncoder` variable names (without `:0`, after any
# scope prefix) -> keras-hub `BertBackbone` weight paths. Both use the same
# EinsumDense kernel layouts, e.g. query (hidden, heads, head_dim).
_TFHUB_TO_KERAS_HUB = (
    (r"word_embeddings/embeddings", r"token_embedding/embeddings"),
    (r"position_embedding/embeddings", r"position_embedding/embeddings"),
    (r"type_embeddings/embeddings", r"segment_embedding/embeddings"),
    (r"embeddings/layer_norm/(gamma|beta)", r"embeddings_layer_norm/\1"),
    (r"transformer/layer_(\d+)/self_attention/(query|key|value|attention_output)/(kernel|bias)",
     r"transformer_layer_\1/self_attention_layer/\2/\3"),
    (r"transformer/layer_(\d+)/self_attention_layer_norm/(gamma|beta)",
     r"transformer_layer_\1/self_attention_layer_norm/\2"),
    (r"transformer/layer_(\d+)/intermediate/(kernel|bias)",
     r"transformer_layer_\1/feedforward_intermediate_dense/\2"),
    (r"transformer/layer_(\d+)/output/(kernel|bias)",
     r"transformer_layer_\1/feedforward_output_dense/\2"),
    (r"transformer/layer_(\d+)/output_layer_norm/(gamma|beta)",
     r"transformer_layer_\1/feedforward_layer_norm/\2"),
    (r"pooler_transform/(kernel|bias)", r"pooled_dense/\1"),
)


@export("keras_efficient.recipes.bert.tfhub_to_keras_hub_name")
def tfhub_to_keras_hub_name(name):
    """The keras-hub `BertBackbone` weight path for a TF Hub BERT variable name.

    Returns `None` for variables that are not part of the encoder (e.g.
    `do_lower_case`). Example: `"transformer/layer_0/intermediate/kernel:0"` gives
    `"transformer_layer_0/feedforward_intermediate_dense/kernel"`.
    """
    name = validate_key("name", name).split(":")[0]
    for pattern, replacement in _TFHUB_TO_KERAS_HUB:
        match = re.fullmatch(r"(?:.*/)?" + pattern, name)
        if match:
            return match.expand(replacement)
    return None


@dataclasses.dataclass(frozen=True)
class _SavedModelContents:
    """What the loader needs from a TF Hub BERT SavedModel, as numpy."""

    weights: dict  # keras-hub weight path -> np.ndarray
    vocabulary: str  # path of the WordPiece vocab.txt (or None)
    lowercase: bool


@functools.lru_cache(maxsize=4)
def _read_savedmodel(path):
    # Cached: the classifier and the preprocessor read the same model, and each
    # variant of a comparison builds a fresh backbone from the same numbers.
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    weights, sources = {}, {}
    for variable in tf.train.TrackableView(loaded).descendants():
        if not isinstance(variable, tf.Variable):
            continue
        target = tfhub_to_keras_hub_name(variable.name)
        if target is None:
            continue
        if target in weights:
            raise ValueError(f"The SavedModel {path!r} has two variables for {target!r}: "
                             f"{sources[target]!r} and {variable.name!r}.")
        weights[target], sources[target] = variable.numpy(), variable.name
    vocabulary = None
    if hasattr(loaded, "vocab_file"):
        vocabulary = loaded.vocab_file.asset_path.numpy().decode()
    elif os.path.exists(os.path.join(path, "assets", "vocab.txt")):
        vocabulary = os.path.join(path, "assets", "vocab.txt")
    lowercase = bool(loaded.do_lower_case.numpy()) if hasattr(loaded, "do_lower_case") \
        else True
    return _SavedModelContents(weights, vocabulary, lowercase)


def _backbone_config(weights, path):
    """keras-hub `BertBackbone` arguments inferred from the variable shapes."""
    required = ["token_embedding/embeddings", "position_embedding/embeddings",
                "segment_embedding/embeddings",
                "transformer_layer_0/self_attention_layer/query/kernel",
                "transformer_layer_0/feedforward_intermediate_dense/kernel"]
    missing = [name for name in required if name not in weights]
    if missing:
        raise ValueError(
            f"{path!r} is not a TF Hub BERT encoder SavedModel: no variables for "
            f"{missing}. Expected TF Model Garden BertEncoder names such as "
            f"'word_embeddings/embeddings:0' and "
            f"'transformer/layer_0/self_attention/query/kernel:0'; found "
            f"{sorted(weights)}.")
    query = weights["transformer_layer_0/self_attention_layer/query/kernel"]
    if query.ndim != 3:
        raise ValueError(f"{path!r}: expected the query kernel as (hidden, heads, "
                         f"head_dim) as in TF Model Garden; received shape {query.shape}.")
    vocabulary_size, hidden_dim = weights["token_embedding/embeddings"].shape
    layers = {int(re.match(r"transformer_layer_(\d+)/", name).group(1))
              for name in weights if name.startswith("transformer_layer_")}
    return {
        "vocabulary_size": int(vocabulary_size),
        "hidden_dim": int(hidden_dim),
        "num_layers": len(layers),
        "num_heads": int(query.shape[1]),
        "intermediate_dim": int(
            weights["transformer_layer_0/feedforward_intermediate_dense/kernel"].shape[1]),
        "max_sequence_length": int(weights["position_embedding/embeddings"].shape[0]),
        "num_segments": int(weights["segment_embedding/embeddings"].shape[0]),
    }


def _backbone_from_savedmodel(path, dropout):
    import keras_hub

    weights = _read_savedmodel(path).weights
    backbone = keras_hub.models.BertBackbone(dropout=dropout,
                                             **_backbone_config(weights, path))
    missing = [w.path for w in backbone.weights if w.path not in weights]
    if missing:
        raise ValueError(f"The SavedModel {path!r} has no variables for {missing}.")
    for weight in backbone.weights:
        value = weights[weight.path]
        if tuple(value.shape) != tuple(weight.shape):
            raise ValueError(f"The SavedModel {path!r}: {weight.path} has shape "
                             f"{value.shape}, the keras-hub backbone expects {weight.shape}.")
        weight.assign(value)
    return backbone


def _is_remote(handle):
    return re.match(r"^(https?|gs)://", handle) is not None


def _resolve_tfhub(handle):
    import tensorflow_hub

    # Downloads (and caches under $TFHUB_CACHE_DIR) a tfhub.dev/Kaggle handle.
    return tensorflow_hub.resolve(handle)


def _known_presets():
    import keras_hub

    return sorted(keras_hub.models.BertBackbone.presets)


def _from_preset(class_name, preset, **kwargs):
    import keras_hub

    try:
        return getattr(keras_hub.models, class_name).from_preset(preset, **kwargs)
    except Exception as error:  # a download or a malformed preset: say what was tried
        raise ValueError(f"Could not load the BERT encoder {preset!r}. Tried:\n- keras-hub "
                         f"{class_name}.from_preset({preset!r}): {type(error).__name__}: "
                         f"{error}") from error


def _locate(handle):
    """Return ("savedmodel", local path) or ("preset", preset) for a handle.

    Raises a ValueError listing everything that was tried.
    """
    if not isinstance(handle, (str, os.PathLike)):
        raise TypeError(f"Invalid type received for argument `handle`. Expected a str "
                        f"or path. Received: handle={handle!r} of type "
                        f"{type(handle).__name__}")
    handle = os.fspath(handle)
    tried = []
    if os.path.isdir(handle):
        if os.path.exists(os.path.join(handle, "saved_model.pb")):
            return "savedmodel", handle
        if os.path.exists(os.path.join(handle, "config.json")):
            return "preset", handle
        tried.append(f"local directory {handle!r}: it has neither saved_model.pb (a TF "
                     f"Hub SavedModel) nor config.json (a keras-hub preset)")
    else:
        tried.append(f"local directory {handle!r}: does not exist")
    if _is_remote(handle):
        try:
            return "savedmodel", _resolve_tfhub(handle)
        except Exception as error:  # noqa: BLE001 - reported below with everything tried
            tried.append(f"tensorflow_hub.resolve({handle!r}): {type(error).__name__}: "
                         f"{error}")
    elif re.match(r"^(kaggle|hf)://", handle) or handle in _known_presets():
        return "preset", handle
    else:
        tried.append(f"keras-hub preset name: not one of {_known_presets()} and not a "
                     f"kaggle:// or hf:// handle")
    raise ValueError(f"Invalid value received for argument `handle`: could not load the "
                     f"BERT encoder {handle!r}. Tried:\n- "
                     + "\n- ".join(tried))


@export("keras_efficient.recipes.bert.load_bert_backbone")
def load_bert_backbone(handle, dropout=0.1):
    """Load a BERT encoder as a trainable keras-hub `BertBackbone`.

    A TF Hub BERT SavedModel (a tfhub.dev/Kaggle handle, or a local directory
    such as a TF Hub download) is read with `tf.saved_model.load`; its variables
    (TF Model Garden `BertEncoder` names: `word_embeddings/embeddings:0`,
    `transformer/layer_0/self_attention/query/kernel:0`, ...,
    `pooler_transform/kernel:0`) are copied into a `BertBackbone` whose size
    (layers, hidden size, heads, intermediate size, vocabulary, positions,
    segments) is read from the variable shapes. The result has Keras variables
    with clean names, so any Keras optimizer (Adam included) trains it. keras-hub
    preset names and local preset directories load with `from_preset`.

    Every call builds a fresh backbone (the SavedModel is read once and cached),
    so call it inside the strategy scope that should own the variables.

    Args:
        handle: a TF Hub handle (https://tfhub.dev/..., https://www.kaggle.com/...),
            a local SavedModel directory, a keras-hub preset name
            (e.g. "bert_tiny_en_uncased"), `kaggle://`/`hf://` handle, or a local
            preset directory.
        dropout: dropout rate inside the encoder (BERT's 0.1 by default).

    Returns:
        A `keras_hub.models.BertBackbone` with inputs `token_ids`, `segment_ids`,
        `padding_mask` and outputs `sequence_output`, `pooled_output`.

    Raises:
        ValueError: when the handle cannot be loaded (the message lists what was
            tried) or the SavedModel is not a BERT encoder.

    Example:

    >>> backbone = load_bert_backbone(BERT_ENCODERS["bert-small"].tfhub)  # downloads
    """
    validate_number("dropout", dropout, 0, 1, high_inclusive=False)
    kind, location = _locate(handle)
    if kind == "savedmodel":
        return _backbone_from_savedmodel(location, dropout)
    return _from_preset("BertBackbone", location, dropout=dropout)


@export("keras_efficient.recipes.bert.load_bert_preprocessor")
def load_bert_preprocessor(handle, sequence_length=128, preprocess_handle=PREPROCESS_HANDLE):
    """The encoder's text preprocessing as a keras-hub layer for `tf.data`.

    A keras-hub `BertTextClassifierPreprocessor` (tensorflow-text WordPiece with
    the encoder's own vocabulary and casing): strings in, `token_ids` /
    `segment_ids` / `padding_mask` of length `sequence_length` out
    (`[CLS] text [SEP]`, truncated and padded), like the book's
    `bert_en_uncased_preprocess`. Map it over a batched dataset of
    `(text, label)` pairs: `dataset.batch(256).map(preprocessor)`.

    Args:
        handle: as for `load_bert_backbone`.
        sequence_length: tokens per example, [CLS] and [SEP] included.
        preprocess_handle: a TF Hub preprocessing model whose `assets/vocab.txt`
            is used when the encoder SavedModel carries no vocabulary.

    Returns:
        A `keras_hub.models.BertTextClassifierPreprocessor`.
    """
    validate_size("sequence_length", sequence_length, low=3)
    import keras_hub

    kind, location = _locate(handle)
    if kind == "preset":
        return _from_preset("BertTextClassifierPreprocessor", location,
                            sequence_length=sequence_length)
    contents = _read_savedmodel(location)
    maximum = contents.weights["position_embedding/embeddings"].shape[0]
    validate_number("sequence_length", sequence_length, 3, int(maximum), integer=True)
    vocabulary = contents.vocabulary
    if vocabulary is None:
        vocabulary = os.path.join(_locate(preprocess_handle)[1], "assets", "vocab.txt")
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary,
                                               lowercase=contents.lowercase)
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length)


def encoder_handle(encoder_size, handle=None):
    """`handle`, or the book's TF Hub handle for `encoder_size` when it is None."""
    validate_choice("encoder_size", encoder_size, BERT_ENCODERS)
    return BERT_ENCODERS[encoder_size].tfhub if handle is None else handle

