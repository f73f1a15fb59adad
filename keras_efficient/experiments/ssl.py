"""Self-supervised pre-training vs supervised training from scratch, with 10% labels.

SimCLR, BYOL and SimSiam pre-train the digits CNN (without its last layer) on
all 1,797 digit images without their labels (train and test images: the
unlabeled pool), once per method (seed 0; the seeds vary everything after it);
then a linear probe is trained on the frozen encoder with a
stratified 10% of the training labels (`few_label_subset`, one draw per seed),
and encoder plus probe are fine-tuned on the same labels (LP-FT) with the same
optimizer, learning rate and epochs as the baseline, which trains the same CNN
from scratch on the same labels. Reported beside the fine-tuned accuracy: the
linear probe's accuracy, the 5-NN accuracy of the representation (same labels)
and the final `embedding_std` of pre-training (collapse monitor).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.data import few_label_subset
from keras_efficient.experiments import base
from keras_efficient.ssl.augmentation import SimCLRAugmentation
from keras_efficient.ssl.byol import BYOL
from keras_efficient.ssl.evaluation import fine_tuning_classifier
from keras_efficient.ssl.evaluation import linear_probe
from keras_efficient.ssl.knn_accuracy import knn_accuracy
from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.simclr import SimCLR
from keras_efficient.ssl.simsiam import SimSiam

LABEL_FRACTION = 0.1
PRETRAIN_EPOCHS, QUICK_PRETRAIN_EPOCHS, PRETRAIN_SEED = 20, 5, 0
PRETRAIN_BATCH_SIZE = 256
PROBE_STEPS, PROBE_LEARNING_RATE = 100, 1e-2
KNN_NEIGHBOURS = 5

METHODS = {
    "simclr": lambda encoder, augmenter: SimCLR(
        encoder, ProjectionHead((64,), 32), augmenter, temperature=0.2),
    "byol": lambda encoder, augmenter: BYOL(
        encoder, ProjectionHead((64,), 32), ProjectionHead((64,), 32), augmenter,
        target_decay=0.99),
    "simsiam": lambda encoder, augmenter: SimSiam(
        encoder, ProjectionHead((64,), 32, output_batch_norm=True), ProjectionHead((16,), 32),
        augmenter),
}


_PRETRAINED = {}  # (method, epochs, data) -> pre-training results


def _encoder(context):
    """The shared digits CNN without its classification layer (64-d output)."""
    cnn = base.digits_cnn(context)
    return keras.Sequential([keras.Input(cnn.input_shape[1:]), *cnn.layers[:-1]], name="encoder")


def _few_labels(context):
    data = context.data
    return few_label_subset(data.x_train, data.y_train, LABEL_FRACTION, seed=context.seed)


def _pretrain(method, context):
    """Pre-trained encoder weights, step time and collapse metric, once per method.

    Pre-training runs once (seed 0) and is shared by the seeds, which vary the
    label subset, the classifier's initialization and the fine-tuning: the
    demo's time budget does not allow a pre-training per seed.
    """
    epochs = QUICK_PRETRAIN_EPOCHS if context.quick else PRETRAIN_EPOCHS
    key = (method, epochs, id(context.data))
    if key not in _PRETRAINED:
        keras.utils.set_random_seed(PRETRAIN_SEED)
        encoder = _encoder(context)
        augmenter = SimCLRAugmentation.from_preset("digits", seed=PRETRAIN_SEED)
        model = METHODS[method](encoder, augmenter)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        base.apply_runtime(model, context)
        timer = base.StepTimer()
        unlabeled = np.concatenate([context.data.x_train, context.data.x_test])
        history = model.fit(unlabeled, batch_size=PRETRAIN_BATCH_SIZE,
                            epochs=epochs, verbose=0, callbacks=[timer])
        _PRETRAINED[key] = {"weights": encoder.get_weights(),
                            "step_seconds": timer.median_step_seconds(),
                            "embedding_std": history.history["embedding_std"][-1]}
        keras.utils.set_random_seed(context.seed)  # what follows depends on the run's seed
    return _PRETRAINED[key]


def _pretrained_encoder(method, context):
    pretrained = _pretrain(method, context)
    encoder = _encoder(context)
    encoder.set_weights(pretrained["weights"])
    return encoder, pretrained


def _supervised(context):
    x_few, y_few = _few_labels(context)
    model = base.digits_cnn(context)
    model.compile(optimizer=context.make_optimizer(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return base.train_classifier(model, context, base.digits_dataset(context, x_few, y_few))


def _trained_probe(encoder, context, x_few, y_few):
    probe = linear_probe(encoder, context.data.num_classes)
    probe.compile(optimizer=keras.optimizers.Adam(PROBE_LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # Full-batch steps in one epoch: Keras's per-epoch overhead would dominate.
    steps = tf.data.Dataset.from_tensors((x_few, y_few)).repeat(PROBE_STEPS)
    probe.fit(steps, epochs=1, verbose=0)
    return probe


def _self_supervised(method):
    def variant(context):
        data = context.data
        x_few, y_few = _few_labels(context)
        encoder, pretrained = _pretrained_encoder(method, context)
        features = [encoder.predict(x, verbose=0) for x in (x_few, data.x_test)]
        knn = knn_accuracy(features[0], y_few, features[1], data.y_test, k=KNN_NEIGHBOURS)
        probe = _trained_probe(encoder, context, x_few, y_few)
        probe_accuracy = base.accuracy_of(probe, data.x_test, data.y_test)

        model = fine_tuning_classifier(encoder, data.num_classes,
                                       initial_head=probe.get_layer("classifier"))
        model.compile(optimizer=context.make_optimizer(),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        result = base.train_classifier(model, context, base.digits_dataset(context, x_few, y_few))
        result.step_seconds = pretrained["step_seconds"]
        result.extra = {"linear_probe": probe_accuracy, f"knn_{KNN_NEIGHBOURS}": knn,
                        "embedding_std": pretrained["embedding_std"]}
        return result

    return variant


base.register_experiment(base.Experiment(
    name="ssl",
    title="Self-supervised pre-training (SimCLR, BYOL, SimSiam) vs supervised, 10% of labels",
    description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    variants={"supervised": _supervised, **{m: _self_supervised(m) for m in METHODS}},
    baseline="supervised",
    epochs=40,
))
