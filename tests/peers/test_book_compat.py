"""The book's chapter-6 BERT notebook feeds the TF Hub preprocessor's keys."""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.recipes import bert

pytestmark = pytest.mark.tensorflow_only("the BERT recipe builds in a tf.distribute scope")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = testing.write_tiny_encoder(str(tmp_path_factory.mktemp("encoder") / "preset"))
    return bert.get_bert_model("bert-small", handle=path, hidden_units=(4,), dropout=0.0)


IDS = np.array([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]], "int32")
KERAS_HUB = {"token_ids": IDS, "segment_ids": np.zeros_like(IDS), "padding_mask": IDS > 0}
TF_HUB = {"input_word_ids": IDS, "input_type_ids": np.zeros_like(IDS),
          "input_mask": (IDS > 0).astype("int32")}


def test_get_bert_model__tf_hub_keys_give_the_keras_hub_outputs(classifier, tmp_path):
    expected = keras.ops.convert_to_numpy(classifier(KERAS_HUB))
    np.testing.assert_allclose(classifier(TF_HUB), expected, rtol=1e-6)
    history = classifier.fit(TF_HUB, np.array([0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(TF_HUB), classifier(KERAS_HUB),
                               rtol=1e-6)


def test_get_bert_model__mixed_preprocessor_keys_rejected(classifier):
    with pytest.raises(ValueError, match="inputs of one preprocessor"):
        classifier({**KERAS_HUB, "input_mask": TF_HUB["input_mask"]})
