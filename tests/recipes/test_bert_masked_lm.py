"""MLM pre-training of a BERT encoder without a checkpoint, then fine-tuning (offline)."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.recipes import bert

# Made-up sentences in the tiny preset's vocabulary (single letters, `##a`..`##j`).
TEXTS = ["a cab fed a bad dog", "the dog ate a big egg", "a bee hid in a hedge",
         "she fed the cab a bag", "a big dog hid the egg", "the bee ate a fig",
         "he had a bad egg", "a cage of bees"]
SEQUENCE_LENGTH = 16


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """The smoke mode's random 1-layer keras-hub BERT preset (no checkpoint, offline)."""
    return testing.write_tiny_encoder(str(tmp_path_factory.mktemp("tiny_bert")))


def _masked_lm_loss(masked_lm, x, y, weights):
    """The MLM cross-entropy over the masked positions, in float64 numpy."""
    logits = np.asarray(masked_lm(x, training=False), dtype="float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.asarray(y)[..., None], axis=-1)[..., 0]
    weights = np.asarray(weights, dtype="float64")
    return float(-(picked * weights).sum() / weights.sum())


class _LossOnFixedBatch(keras.callbacks.Callback):
    """Records the MLM loss on one fixed masked batch before and after training."""

    def __init__(self, batch):
        super().__init__()
        self.batch = batch
        self.losses = []

    def on_train_begin(self, logs=None):
        self.losses.append(_masked_lm_loss(self.model, *self.batch))

    def on_train_end(self, logs=None):
        self.losses.append(_masked_lm_loss(self.model, *self.batch))


def _weights(backbone):
    return {w.path: np.array(w) for w in backbone.weights}


def test_pretrain_masked_lm__lowers_loss_changes_encoder_then_fine_tunes(tiny_preset):
    keras.utils.set_random_seed(0)
    masker = keras_hub.models.BertMaskedLMPreprocessor.from_preset(
        tiny_preset, sequence_length=SEQUENCE_LENGTH, mask_selection_length=3)
    fixed_batch = masker(tf.constant(TEXTS))  # masks drawn once: the same batch twice
    assert float(np.sum(fixed_batch[2])) > 0  # some tokens are masked
    recorder = _LossOnFixedBatch(fixed_batch)
    initial = _weights(bert.load_bert_backbone(tiny_preset))

    backbone = bert.pretrain_masked_lm(
        tiny_preset, TEXTS, sequence_length=SEQUENCE_LENGTH, steps_per_epoch=12, batch_size=8,
        learning_rate=1e-2, callbacks=[recorder], jit_compile=False)

    assert isinstance(backbone, keras_hub.models.BertBackbone)
    first, last = recorder.losses
    assert np.isfinite(first) and last < 0.85 * first, recorder.losses
    pretrained = _weights(backbone)
    # The MLM head reads the sequence output: only the pooler gets no gradient.
    unchanged = [name for name in initial if not name.startswith("pooled_dense/")
                 and np.array_equal(initial[name], pretrained[name])]
    assert not unchanged, f"MLM pre-training left encoder weights unchanged: {unchanged}"

    # Fine-tuning in the book's classifier shares (does not copy) the backbone.
    model = bert.get_bert_model("bert-small", learning_rate=1e-3, backbone=backbone,
                                num_classes=2, jit_compile=False)
    assert [layer for layer in model.layers
            if isinstance(layer, keras_hub.models.BertBackbone)] == [backbone]
    inputs = bert.load_bert_preprocessor(tiny_preset, SEQUENCE_LENGTH)(tf.constant(TEXTS))
    history = model.fit(inputs, np.arange(len(TEXTS)) % 2, batch_size=len(TEXTS),
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    tuned = _weights(backbone)
    assert not np.array_equal(tuned["pooled_dense/kernel"], pretrained["pooled_dense/kernel"])


def test_pretrain_masked_lm__backbone_trains_in_place_with_its_tokenizer():
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=8)
    before = np.array(backbone.token_embedding.embeddings)
    texts = tf.data.Dataset.from_tensor_slices(["a b c a", "c b a b"])
    trained = bert.pretrain_masked_lm(backbone, texts, tokenizer=tokenizer,
                                      sequence_length=8, mask_selection_rate=0.5,
                                      learning_rate=1e-2, jit_compile=False)
    assert trained is backbone
    assert not np.array_equal(np.array(backbone.token_embedding.embeddings), before)


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.5, -0.1])
def test_pretrain_masked_lm__mask_selection_rate_outside_open_unit_interval(tiny_preset,
                                                                           rate):
    with pytest.raises(ValueError, match=r"argument `mask_selection_rate`.*\(0, 1\)"):
        bert.pretrain_masked_lm(tiny_preset, TEXTS, mask_selection_rate=rate)


@pytest.mark.parametrize("texts", [[], tf.data.Dataset.from_tensor_slices(
    tf.constant([], dtype=tf.string))], ids=["list", "dataset"])
def test_pretrain_masked_lm__empty_texts_rejected(tiny_preset, texts):
    with pytest.raises(ValueError, match="argument `texts`.*"):
        bert.pretrain_masked_lm(tiny_preset, texts)


def test_pretrain_masked_lm__backbone_without_tokenizer_rejected(tiny_preset):
    backbone = bert.load_bert_backbone(tiny_preset)
    with pytest.raises(ValueError, match="argument `tokenizer`.*BertTokenizer"):
        bert.pretrain_masked_lm(backbone, TEXTS)


def test_get_bert_model__backbone_and_handle_together_rejected(tiny_preset):
    backbone = bert.load_bert_backbone(tiny_preset)
    with pytest.raises(ValueError, match="argument `backbone`.*handle="):
        bert.get_bert_model("bert-small", backbone=backbone, handle=tiny_preset)


def test_pretrain_masked_lm__one_string_instead_of_a_list_rejected(tiny_preset):
    with pytest.raises(TypeError, match="argument `texts`.*not one string"):
        bert.pretrain_masked_lm(tiny_preset, "a cab fed a bad dog")
