"""Label smoothing on the digits CNN, and what every soft-target variant shares.

The experiment itself ("soft_targets": plain vs label smoothing vs MixUp vs CutMix,
one shared baseline so that the demo budget holds) is registered in `mixup.py`.
Every variant trains the shared digits CNN on the same shuffled batches; besides
test accuracy it reports the expected calibration error (ECE, 10 equal-width
confidence bins, Guo et al. 2017) and the test negative log-likelihood, since label
smoothing and mixup mainly change confidence (Muller et al. 2019; Thulasidasan
et al. 2019).
"""

import keras
import numpy as np

from keras_efficient.experiments import base
from keras_efficient.losses import SparseCategoricalCrossentropy

EPSILON = 0.1


def expected_calibration_error(probabilities, labels, bins=10):
    """Sum over confidence bins of |accuracy - mean confidence| weighted by bin size."""
    confidence = probabilities.max(-1)
    correct = probabilities.argmax(-1) == np.asarray(labels).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.digitize(confidence, edges[1:-1])  # 0 .. bins - 1
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def train_digits_cnn(context, loss, mixer=None):
    """Train the shared CNN on shuffled batches (optionally mixed by `mixer`) with
    `loss`; the result carries ECE and test NLL in `extra`."""
    data = context.data
    batches = base.digits_dataset(context)
    if mixer is not None:
        batches = batches.map(mixer)
    model = base.digits_cnn(context)
    model.compile(optimizer=context.make_optimizer(), loss=loss)
    result = base.train_classifier(model, context, train_data=batches)
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(data.x_test, batch_size=256, verbose=0)))
    true_probability = probabilities[np.arange(len(data.y_test)), data.y_test]
    result.extra["ece"] = expected_calibration_error(probabilities, data.y_test)
    result.extra["test_nll"] = float(-np.mean(np.log(np.maximum(true_probability, 1e-12))))
    return result


def plain(context):
    """The baseline: plain crossentropy on integer labels."""
    return train_digits_cnn(context, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def label_smoothing(context):
    """`ke.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)` on integer labels."""
    return train_digits_cnn(
        context, SparseCategoricalCrossentropy(from_logits=True, label_smoothing=EPSILON))
