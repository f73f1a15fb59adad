"""The book's BERT project: TF Hub SavedModel -> keras-hub backbone, the classifier,
weight shuffling, AG News in tf.data, the config runner and the notebook (offline)."""

import json
import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import yaml

from keras_efficient import testing
from keras_efficient.cli import main
from keras_efficient.recipes import bert

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "news", "stock",
              "market", "team", "won", "rose", "##s", "a", "b", "c"]
LAYERS, HIDDEN, HEADS, INTERMEDIATE, POSITIONS = 2, 16, 2, 32, 24


class TinyTfHubBert(tf.Module):
    """A BERT encoder in the TF Hub / TF Model Garden SavedModel layout.

    Variable names, shapes and signature follow the real TF Hub BERT encoders
    (`bert_en_uncased_L-12_H-768_A-12/4`): `word_embeddings/embeddings:0`,
    `transformer/layer_0/self_attention/query/kernel:0` (hidden, heads, head_dim),
    ..., `pooler_transform/kernel:0`; inputs `input_word_ids` / `input_mask` /
    `input_type_ids`; outputs `pooled_output` / `sequence_output`; `vocab_file`
    and `do_lower_case`. Its forward pass is written here from the BERT paper,
    independently of keras-hub.
    """

    # The real SavedModels expose their variables as plain lists.
    variables = None
    trainable_variables = None

    def __init__(self, vocab_file, num_layers, seed=0):
        super().__init__()
        self.num_layers = num_layers
        rng = np.random.default_rng(seed)
        head_dim = HIDDEN // HEADS

        def variable(name, shape, mean=0.0):
            # Large, distinct values so that any mix-up in the mapping shows.
            value = (mean + 0.3 * rng.standard_normal(shape)).astype("float32")
            return tf.Variable(value, name=name)

        self.names = {}
        shapes = {
            "word_embeddings/embeddings": (len(VOCABULARY), HIDDEN),
            "position_embedding/embeddings": (POSITIONS, HIDDEN),
            "type_embeddings/embeddings": (2, HIDDEN),
            "embeddings/layer_norm/gamma": (HIDDEN,),
            "embeddings/layer_norm/beta": (HIDDEN,),
            "pooler_transform/kernel": (HIDDEN, HIDDEN),
            "pooler_transform/bias": (HIDDEN,),
        }
        for i in range(num_layers):
            prefix = f"transformer/layer_{i}/"
            for part in ("query", "key", "value"):
                shapes[f"{prefix}self_attention/{part}/kernel"] = (HIDDEN, HEADS, head_dim)
                shapes[f"{prefix}self_attention/{part}/bias"] = (HEADS, head_dim)
            shapes[f"{prefix}self_attention/attention_output/kernel"] = (HEADS, head_dim,
                                                                          HIDDEN)
            shapes[f"{prefix}self_attention/attention_output/bias"] = (HIDDEN,)
            shapes[f"{prefix}intermediate/kernel"] = (HIDDEN, INTERMEDIATE)
            shapes[f"{prefix}intermediate/bias"] = (INTERMEDIATE,)
            shapes[f"{prefix}output/kernel"] = (INTERMEDIATE, HIDDEN)
            shapes[f"{prefix}output/bias"] = (HIDDEN,)
            for norm in ("self_attention_layer_norm", "output_layer_norm"):
                shapes[f"{prefix}{norm}/gamma"] = (HIDDEN,)
                shapes[f"{prefix}{norm}/beta"] = (HIDDEN,)
        for name, shape in shapes.items():
            self.names[name] = variable(name, shape, 1.0 if name.endswith("gamma") else 0.0)
        self.variables = list(self.names.values())
        self.trainable_variables = list(self.names.values())
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        self.do_lower_case = tf.Variable(True, trainable=False, name="do_lower_case")

    @tf.function(input_signature=[{
        name: tf.TensorSpec([None, None], tf.int32, name=name)
        for name in ("input_word_ids", "input_mask", "input_type_ids")}])
    def __call__(self, inputs):
        w = self.names
        ids, mask, types = (inputs["input_word_ids"], inputs["input_mask"],
                            inputs["input_type_ids"])
        length = tf.shape(ids)[1]
        x = (tf.gather(w["word_embeddings/embeddings"], ids)
             + w["position_embedding/embeddings"][None, :length]
             + tf.gather(w["type_embeddings/embeddings"], types))
        x = _layer_norm(x, w, "embeddings/layer_norm")
        # Padding keys get -1e9 before the softmax.
        key_bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        for i in range(self.num_layers):
            p = f"transformer/layer_{i}/"
            q, k, v = (tf.einsum("btd,dnh->btnh", x, w[f"{p}self_attention/{n}/kernel"])
                       + w[f"{p}self_attention/{n}/bias"] for n in ("query", "key", "value"))
            scores = tf.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(HIDDEN // HEADS)
            context = tf.einsum("bnqk,bknh->bqnh", tf.nn.softmax(scores + key_bias), v)
            attention = (tf.einsum("bqnh,nhd->bqd", context,
                                   w[f"{p}self_attention/attention_output/kernel"])
                         + w[f"{p}self_attention/attention_output/bias"])
            x = _layer_norm(x + attention, w, f"{p}self_attention_layer_norm")
            hidden = x @ w[f"{p}intermediate/kernel"] + w[f"{p}intermediate/bias"]
            # BERT's GELU, tanh approximation (as in TF Model Garden).
            hidden = 0.5 * hidden * (1.0 + tf.tanh(
                math.sqrt(2.0 / math.pi) * (hidden + 0.044715 * hidden ** 3)))
            x = _layer_norm(x + hidden @ w[f"{p}output/kernel"] + w[f"{p}output/bias"], w,
                            f"{p}output_layer_norm")
        pooled = tf.tanh(x[:, 0] @ w["pooler_transform/kernel"] + w["pooler_transform/bias"])
        return {"pooled_output": pooled, "sequence_output": x, "default": pooled}


def _layer_norm(x, weights, name):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return ((x - mean) / tf.sqrt(variance + 1e-12) * weights[f"{name}/gamma"]
            + weights[f"{name}/beta"])


def _save_tfhub_encoder(folder, num_layers):
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(VOCABULARY) + "\n")
    module = TinyTfHubBert(str(vocab_file), num_layers)
    tf.saved_model.save(module, str(folder / "encoder"))
    return str(folder / "encoder"), module


@pytest.fixture(scope="module")
def tfhub_encoder(tmp_path_factory):
    """Path of a tiny 2-layer TF Hub BERT SavedModel, and the module that was saved."""
    return _save_tfhub_encoder(tmp_path_factory.mktemp("tfhub_bert"), LAYERS)


@pytest.fixture(scope="module")
def one_layer_encoder(tmp_path_factory):
    """A 1-layer one: the tests that train (tracing time grows with depth)."""
    return _save_tfhub_encoder(tmp_path_factory.mktemp("tfhub_bert_1"), 1)


def _inputs(batch=4, length=10, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, length + 1, size=batch)
    mask = (np.arange(length)[None] < lengths[:, None]).astype("int32")
    ids = rng.integers(5, len(VOCABULARY), size=(batch, length)).astype("int32") * mask
    types = (rng.random((batch, length)) < 0.3).astype("int32") * mask
    return ids, mask, types


def test_load_bert_backbone__matches_tfhub_savedmodel_outputs(tfhub_encoder):
    path, _ = tfhub_encoder
    ids, mask, types = _inputs()
    expected = tf.saved_model.load(path)(
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
    backbone = bert.load_bert_backbone(path)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads,
            backbone.intermediate_dim, backbone.vocabulary_size,
            backbone.max_sequence_length) == (LAYERS, HIDDEN, HEADS, INTERMEDIATE,
                                              len(VOCABULARY), POSITIONS)
    actual = backbone({"token_ids": ids, "padding_mask": mask, "segment_ids": types})
    np.testing.assert_allclose(actual["pooled_output"], expected["pooled_output"],
                               atol=1e-5)
    valid = mask.astype(bool)  # padded positions are never read downstream
    np.testing.assert_allclose(np.asarray(actual["sequence_output"])[valid],
                               np.asarray(expected["sequence_output"])[valid], atol=1e-5)


@pytest.mark.parametrize("name, expected", [
    ("transformer/layer_11/self_attention/attention_output/kernel:0",
     "transformer_layer_11/self_attention_layer/attention_output/kernel"),
    ("bert_encoder/transformer/layer_0/output_layer_norm/beta:0",
     "transformer_layer_0/feedforward_layer_norm/beta"),
    ("transformer/layer_1/output/bias:0", "transformer_layer_1/feedforward_output_dense/bias"),
    ("embeddings/layer_norm/gamma:0", "embeddings_layer_norm/gamma"),
    ("pooler_transform/kernel:0", "pooled_dense/kernel"),
    ("do_lower_case:0", None),
])
def test_tfhub_to_keras_hub_name__maps_model_garden_names(name, expected):
    assert bert.tfhub_to_keras_hub_name(name) == expected


def test_load_bert_preprocessor__uses_the_savedmodel_vocabulary(tfhub_encoder):
    preprocessor = bert.load_bert_preprocessor(tfhub_encoder[0], sequence_length=8)
    x = preprocessor(tf.constant(["The STOCKS rose", "news"]))
    # [CLS]=2 the=5 stock=7 ##s=12 rose=11 [SEP]=3, lower-cased as the model says.
    np.testing.assert_array_equal(x["token_ids"], [[2, 5, 7, 12, 11, 3, 0, 0],
                                                   [2, 6, 3, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(x["padding_mask"], np.asarray(x["token_ids"]) > 0)
    np.testing.assert_array_equal(x["segment_ids"], np.zeros((2, 8)))


def _encoder_weights(model):
    import keras_hub

    (backbone,) = [layer for layer in model.layers
                   if isinstance(layer, keras_hub.models.BertBackbone)]
    return {w.path: np.array(w) for w in backbone.weights}


def test_get_bert_model__adam_fit_on_mock_ag_news_changes_encoder_weights(one_layer_encoder):
    path, module = one_layer_encoder
    keras.utils.set_random_seed(0)
    model = bert.get_bert_model("bert-small", learning_rate=1e-3, handle=path)
    before = _encoder_weights(model)
    # The encoder starts from the SavedModel's numbers.
    np.testing.assert_array_equal(before["token_embedding/embeddings"],
                                  module.names["word_embeddings/embeddings"])
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)
            ] == [200, 100, 50, 4]
    preprocessor = bert.load_bert_preprocessor(path, sequence_length=16)
    with tfds.testing.mock_data(num_examples=16):
        train = bert.load_ag_news(preprocessor, "train", batch_size=8, take=16)
        inputs, labels = next(iter(train))
        assert inputs["token_ids"].shape == (8, 16) and labels.shape == (8,)
        history = model.fit(train, epochs=1, steps_per_epoch=1, verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert np.isfinite(history.history["loss"][0])
    after = _encoder_weights(model)
    unchanged = [name for name in before if np.array_equal(before[name], after[name])]
    assert not unchanged, f"Adam left encoder weights unchanged: {unchanged}"


def test_shuffle_weights__keeps_each_multiset_and_changes_order():
    layer = keras.layers.Dense(7)
    layer.build((None, 5))
    layer.set_weights([np.arange(35, dtype="float32").reshape(5, 7),
                       np.arange(7, dtype="float32")])
    original = layer.get_weights()
    bert.shuffle_weights(layer, seed=3)
    shuffled = layer.get_weights()
    for before, after in zip(original, shuffled):
        assert after.shape == before.shape
        np.testing.assert_array_equal(np.sort(after, axis=None), np.sort(before, axis=None))
        assert not np.array_equal(after, before)
    bert.shuffle_weights(layer, weights=original, seed=3)  # same seed, same permutation
    for again, after in zip(layer.get_weights(), shuffled):
        np.testing.assert_array_equal(again, after)


def test_get_bert_model__shuffled_encoder_permutes_the_pretrained_values(one_layer_encoder):
    path, module = one_layer_encoder
    model = bert.get_bert_model("bert-small", keep_tfhub_weights=False, handle=path, seed=1)
    kernel = _encoder_weights(model)["transformer_layer_0/self_attention_layer/query/kernel"]
    pretrained = module.names["transformer/layer_0/self_attention/query/kernel"].numpy()
    np.testing.assert_array_equal(np.sort(kernel, axis=None), np.sort(pretrained, axis=None))
    assert not np.array_equal(kernel, pretrained)


def test_load_bert_backbone__local_keras_hub_preset_directory(tmp_path):
    directory = testing.write_tiny_encoder(str(tmp_path / "preset"))
    import keras_hub

    saved = keras_hub.models.BertBackbone.from_preset(directory)
    loaded = bert.load_bert_backbone(directory)
    for a, b in zip(loaded.weights, saved.weights):
        np.testing.assert_array_equal(a, b)
    x = bert.load_bert_preprocessor(directory, sequence_length=6)(tf.constant(["ab"]))
    assert x["token_ids"].shape == (1, 6) and int(x["token_ids"][0, 0]) == 2  # [CLS]


def test_get_bert_model__unknown_encoder_size_lists_valid_names():
    with pytest.raises(ValueError, match=r"argument `encoder_size`.*'bert-base', "
                                         r"'bert-small'.*bert-large"):
        bert.get_bert_model("bert-large")


def test_get_bert_model__num_classes_below_two_rejected(tfhub_encoder):
    with pytest.raises(ValueError, match="argument `num_classes`.*>= 2.*num_classes=1"):
        bert.get_bert_model("bert-small", num_classes=1, handle=tfhub_encoder[0])


def test_load_bert_backbone__unloadable_handles_say_what_was_tried(tmp_path):
    with pytest.raises(ValueError, match=r"(?s)Tried:.*local directory.*does not exist"
                                         r".*keras-hub preset name"):
        bert.load_bert_backbone(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="neither saved_model.pb.*nor config.json"):
        bert.load_bert_backbone(str(tmp_path))
    # No network in tests: the TF Hub download fails and is reported.
    with pytest.raises(ValueError, match=r"(?s)Tried:.*tensorflow_hub\.resolve"):
        bert.load_bert_backbone(bert.BERT_ENCODERS["bert-small"].tfhub)
    with pytest.raises(ValueError, match=r"(?s)Tried:.*BertBackbone\.from_preset"):
        bert.load_bert_backbone(bert.BERT_ENCODERS["bert-small"].keras_hub_preset)


def test_load_bert_preprocessor__sequence_longer_than_positions_rejected(tfhub_encoder):
    with pytest.raises(ValueError, match=rf"argument `sequence_length`.*\[3, {POSITIONS}\]"):
        bert.load_bert_preprocessor(tfhub_encoder[0], sequence_length=POSITIONS + 1)


@pytest.mark.parametrize("check", ["config", "saving", "jit"])
def test_get_bert_model__harness(one_layer_encoder, check):
    ids, mask, types = _inputs(batch=4, length=8)
    testing.check_model(
        lambda: bert.get_bert_model("bert-small", handle=one_layer_encoder[0], dropout=0.0),
        lambda: {"optimizer": keras.optimizers.Adam(1e-3),
                 "loss": keras.losses.SparseCategoricalCrossentropy()},
        {"token_ids": ids, "padding_mask": mask, "segment_ids": types},
        np.array([0, 1, 2, 3]), checks=[check], atol=1e-5)


def test_run__bert_config_end_to_end_in_smoke_mode(tmp_path):
    raw = yaml.safe_load((ROOT / "tpu_configs" / "bert_agnews_small.yaml").read_text())
    raw["task"]["params"]["smoke"] = True
    raw["task"]["variants"] = ["shuffled"]  # the notebook's test runs both variants
    path = tmp_path / "bert_smoke.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--out", str(tmp_path / "report")]) == 0
    results = json.loads((tmp_path / "report" / "bert_agnews.json").read_text())
    assert [r["variant"] for r in results] == ["shuffled"]
    assert all(0.0 <= r["best_accuracy"] <= 1.0 and len(r["val_accuracy"]) == 1
               for r in results)
    assert "| bert-small | shuffled |" in (tmp_path / "report" / "bert_agnews.md").read_text()


def test_run__bert_config_rejects_unknown_params(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task:\n  technique: bert_agnews\n  dataset: ag_news\n"
                    "  params: {encoder: bert-small}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*`task\.params\.encoder`"):
        main(["run", str(path)])


def test_notebook__bert_agnews_runs_in_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = testing.run_notebook(ROOT / "notebooks" / "bert_agnews.ipynb")
    results = namespace["results"]
    assert [(r.encoder_size, r.variant) for r in results] == [
        ("bert-small", "pretrained"), ("bert-small", "shuffled")]
    assert all(0.0 <= r.best_accuracy <= 1.0 for r in results)
    # One validation accuracy per smoke epoch; the best is one of them.
    assert all(len(r.val_accuracy) == testing.SMOKE_BUDGET["epochs"]
               and r.best_accuracy in r.val_accuracy for r in results)
    assert "| bert-small | shuffled |" in namespace["table"]


def test_compare_pretrained_vs_shuffled__misspelt_learning_rate_key_rejected():
    with pytest.raises(ValueError, match=r"argument `learning_rates`.*'pretrained', "
                                         r"'shuffled'.*pretrain"):
        bert.compare_pretrained_vs_shuffled("bert-small", learning_rates={"pretrain": 1e-4})
