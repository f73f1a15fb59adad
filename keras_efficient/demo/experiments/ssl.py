"""Self-supervised pre-training vs supervised training from scratch, with 10% and 1% labels.

SimCLR, BYOL, SimSiam, rotation prediction (RotNet: `RotationPretext`, a
4-way classifier on the encoder) and a VAE (Bernoulli likelihood, 16 latent
units; its posterior head sits on the encoder as SimCLR's projection head
does, and the probe reads the encoder's 64-d features like the others) pre-train the digits CNN (without its last
layer) on the training and validation images without their labels (the
unlabeled pool; the test images stay unseen), once per method for the whole demo (seed 0; the seeds vary
everything after it). Then, per seed, with a stratified fraction of the
training labels (`few_label_subset`, one draw per seed): `<method>_probe` is a
linear probe trained on the frozen encoder, `<method>_finetune` is encoder plus
that probe fine-tuned on the same labels (LP-FT) with the same optimizer,
learning rate and epochs as the baseline, which trains the same CNN from
scratch on the same labels. Probe rows also report the k-NN accuracy of the
representation (same labels; k = 5, or 1 when a class has a single label) and
the final `embedding_std` of pre-training (collapse monitor; for the VAE its
final `active_units` and `elbo`); the step time of every self-supervised row is
that of pre-training.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.data import few_label_subset
from keras_efficient.demo import base
from keras_efficient.ssl.augmentation import SimCLRAugmentation
from keras_efficient.ssl.byol import BYOL
from keras_efficient.ssl.evaluation import fine_tuning_classifier
from keras_efficient.ssl.evaluation import linear_probe
from keras_efficient.ssl.knn_accuracy import knn_accuracy
from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.rotation_pretext import RotationPretext
from keras_efficient.ssl.simclr import SimCLR
from keras_efficient.ssl.simsiam import SimSiam
from keras_efficient.vae.vae import VAE

LABEL_FRACTIONS = {"ssl": 0.1, "ssl_1pct": 0.01}  # experiment name -> share of labels
# Both run with `keras-efficient demo --full` (or named with `--only`): the demo's
# 10-minute budget holds `ssl_core`, SimCLR and the VAE at 10% of the labels.
FULL_ONLY = ("ssl", "ssl_1pct")
CORE_METHODS = ("simclr", "vae")
PRETRAIN_EPOCHS, QUICK_PRETRAIN_EPOCHS, PRETRAIN_SEED = 20, 5, 0
PRETRAIN_BATCH_SIZE = 256  # images per pre-training step (rotation: 64 images x 4 rotations)
PRETRAIN_LEARNING_RATE = 1e-3
PROBE_STEPS, PROBE_LEARNING_RATE = 100, 1e-2
KNN_NEIGHBOURS = 5
VAE_LATENT_DIM = 16


def _joint_embedding(build):
    """A pre-training method that makes two augmented views of an image agree."""

    def prepare(encoder, unlabeled, optimizer):
        augmenter = SimCLRAugmentation.from_preset("digits", seed=PRETRAIN_SEED)
        model = build(encoder, augmenter)
        model.compile(optimizer=optimizer)
        return model, {"x": unlabeled, "batch_size": PRETRAIN_BATCH_SIZE}

    return prepare


def _rotation(encoder, unlabeled, optimizer):
    """Rotation prediction: all four rotations of every image, labelled 0-3."""
    model = keras.Sequential([encoder, keras.layers.Dense(4)], name="rotation_classifier")
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rotations = (tf.data.Dataset.from_tensor_slices(unlabeled)
                 .shuffle(len(unlabeled), seed=PRETRAIN_SEED)
                 .batch(PRETRAIN_BATCH_SIZE // 4)
                 .map(RotationPretext())
                 .prefetch(tf.data.AUTOTUNE))
    return model, {"x": rotations, "shuffle": False}  # shuffled in the pipeline


def _vae(encoder, unlabeled, optimizer):
    """A VAE: the encoder plus a Dense posterior head, an MLP decoder to pixel logits."""
    shape = unlabeled.shape[1:]
    posterior = keras.Sequential([encoder, keras.layers.Dense(2 * VAE_LATENT_DIM)])
    decoder = keras.Sequential([keras.Input((VAE_LATENT_DIM,)),
                                keras.layers.Dense(256, activation="relu"),
                                keras.layers.Dense(int(np.prod(shape))),
                                keras.layers.Reshape(shape)])
    model = VAE(posterior, decoder, VAE_LATENT_DIM, seed=PRETRAIN_SEED)
    model.compile(optimizer=optimizer)
    return model, {"x": unlabeled, "batch_size": PRETRAIN_BATCH_SIZE}


# Method name -> `(encoder, unlabeled images, optimizer) -> (compiled model, fit inputs)`.
METHODS = {
    "simclr": _joint_embedding(lambda encoder, augmenter: SimCLR(
        encoder, ProjectionHead((64,), 32), augmenter, temperature=0.2)),
    "byol": _joint_embedding(lambda encoder, augmenter: BYOL(
        encoder, ProjectionHead((64,), 32), ProjectionHead((64,), 32), augmenter,
        target_decay=0.99)),
    "simsiam": _joint_embedding(lambda encoder, augmenter: SimSiam(
        encoder, ProjectionHead((64,), 32, output_batch_norm=True), ProjectionHead((16,), 32),
        augmenter)),
    "rotation": _rotation,
    "vae": _vae,
}
COLLAPSE_METRICS = ("embedding_std", "active_units", "elbo")  # logged by some methods


_PRETRAINED = {}  # (method, epochs, data, optimizer, learning rate) -> pre-training results
_PROBES = {}  # (pre-training key, fraction, seed) -> linear-probe results


def _encoder(context):
    """The shared digits CNN without its classification layer (64-d output)."""
    cnn = base.digits_cnn(context)
    return keras.Sequential([keras.Input(cnn.input_shape[1:]), *cnn.layers[:-1]], name="encoder")


def _few_labels(context, fraction):
    data = context.data
    return few_label_subset(data.x_train, data.y_train, fraction, seed=context.seed)


def _pretrain_key(method, context):
    settings = context.settings
    epochs = QUICK_PRETRAIN_EPOCHS if settings.quick else PRETRAIN_EPOCHS
    return method, epochs, id(context.data), settings.optimizer, settings.learning_rate


def _pretrain(method, context):
    """Pre-trained encoder weights, step time and collapse metric, once per method.

    Pre-training runs once (seed 0) and is shared by the seeds and both label
    fractions, which vary the label subset, the classifier's initialization
    and the fine-tuning: the demo's time budget does not allow a pre-training
    per seed.
    """
    key = _pretrain_key(method, context)
    if key not in _PRETRAINED:
        keras.utils.set_random_seed(PRETRAIN_SEED)
        encoder = _encoder(context)
        # The training and validation images; the test images stay unseen.
        unlabeled = np.concatenate([context.data.x_train, context.data.x_val])
        model, inputs = METHODS[method](encoder, unlabeled,
                                        context.make_optimizer(PRETRAIN_LEARNING_RATE))
        base.apply_runtime(model, context)
        timer = base.StepTimer()
        history = model.fit(**inputs, epochs=key[1], verbose=0, callbacks=[timer])
        _PRETRAINED[key] = {"weights": encoder.get_weights(),
                            "step_seconds": timer.median_step_seconds(),
                            "extra": {name: history.history[name][-1]
                                      for name in COLLAPSE_METRICS if name in history.history}}
        if isinstance(model, VAE):
            _PRETRAINED[key]["pictures"] = _vae_pictures(model, context.data.x_test)
        keras.utils.set_random_seed(context.seed)  # what follows depends on the run's seed
    return _PRETRAINED[key]


def _vae_pictures(vae, x_test):
    """Rows of 10 images: test digits, their reconstructions, digits sampled from the prior."""
    originals = x_test[:20]
    images = [originals, keras.ops.convert_to_numpy(vae.reconstruct(originals)),
              keras.ops.convert_to_numpy(vae.sample(20, seed=PRETRAIN_SEED))]
    rows = [np.concatenate(list(part[i:i + 10, ..., 0]), axis=1)
            for part in images for i in (0, 10)]
    return np.concatenate(rows, axis=0)


def _draw_vae_pictures(folder):
    """The report's picture of the last VAE pre-trained in this process."""
    pictures = [entry["pictures"] for entry in _PRETRAINED.values() if "pictures" in entry]
    if not pictures:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.imshow(pictures[-1], cmap="gray_r", vmin=0, vmax=1)
    axis.set_yticks([i * pictures[-1].shape[0] / 6 + pictures[-1].shape[0] / 12
                     for i in range(6)],
                    ["test", "", "reconstructed", "", "sampled", ""])
    axis.set_xticks([])
    figure.tight_layout()
    figure.savefig(folder / "vae_digits.png", dpi=110)
    plt.close(figure)
    caption = ("VAE pre-trained on the unlabeled digits: 20 test digits, their reconstructions "
               "from the posterior mean, and 20 digits decoded from z ~ N(0, I)")
    return [(caption, "vae_digits.png")]


def _pretrained_encoder(method, context):
    pretrained = _pretrain(method, context)
    encoder = _encoder(context)
    encoder.set_weights(pretrained["weights"])
    return encoder, pretrained


def _probe(method, fraction, context):
    """The linear probe (and 5-NN) on the frozen encoder for one label draw.

    Trained once per method, fraction and seed, and shared by the `_probe`
    variant that reports it and the `_finetune` variant that starts from it.
    """
    key = (*_pretrain_key(method, context), fraction, context.seed)
    if key not in _PROBES:
        data = context.data
        x_few, y_few = _few_labels(context, fraction)
        encoder, _ = _pretrained_encoder(method, context)
        # One predict call: a second input shape would trace the function again.
        features = encoder.predict(np.concatenate([x_few, data.x_test]), verbose=0)
        # A majority vote needs more than one neighbour per class (1% keeps one).
        k = min(KNN_NEIGHBOURS, int(np.bincount(y_few).min()))
        knn = knn_accuracy(features[:len(y_few)], y_few, features[len(y_few):], data.y_test, k=k)
        keras.utils.set_random_seed(context.seed)
        probe = linear_probe(encoder, data.num_classes)
        probe.compile(optimizer=context.make_optimizer(PROBE_LEARNING_RATE),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        # Full-batch steps in one epoch: Keras's per-epoch overhead would dominate.
        steps = tf.data.Dataset.from_tensors((x_few, y_few)).repeat(PROBE_STEPS)
        probe.fit(steps, epochs=1, verbose=0, shuffle=False)
        _PROBES[key] = {"head": probe.get_layer("classifier").get_weights(),
                        "accuracy": base.accuracy_of(probe, data.x_test, data.y_test),
                        "extra": {f"knn_{k}": knn}}
        # The fine-tuning that follows must not depend on whether the probe was cached.
        keras.utils.set_random_seed(context.seed)
    return _PROBES[key]


def _supervised(fraction):
    def variant(context):
        x_few, y_few = _few_labels(context, fraction)
        model = base.digits_cnn(context)
        model.compile(optimizer=context.make_optimizer(),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return base.train_classifier(model, context, base.digits_dataset(context, x_few, y_few))

    return variant


def _probed(method, fraction):
    def variant(context):
        probe = _probe(method, fraction, context)
        pretrained = _pretrain(method, context)
        # No learning curve: the probe trains in one epoch of full-batch steps.
        return base.RunResult(probe["accuracy"], [], pretrained["step_seconds"],
                              {**probe["extra"], **pretrained["extra"]})

    return variant


def _fine_tuned(method, fraction):
    def variant(context):
        probe = _probe(method, fraction, context)
        x_few, y_few = _few_labels(context, fraction)
        encoder, pretrained = _pretrained_encoder(method, context)
        model = fine_tuning_classifier(encoder, context.data.num_classes)
        model.get_layer("classifier").set_weights(probe["head"])  # LP-FT
        model.compile(optimizer=context.make_optimizer(),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        result = base.train_classifier(model, context, base.digits_dataset(context, x_few, y_few))
        result.step_seconds = pretrained["step_seconds"]
        return result

    return variant


_DISPLAY_NAMES = {"simclr": "SimCLR", "byol": "BYOL", "simsiam": "SimSiam",
                  "rotation": "rotation", "vae": "VAE"}


def _experiment(name, fraction, methods=tuple(METHODS)):
    variants = {"supervised": _supervised(fraction)}
    for method in methods:
        variants[f"{method}_probe"] = _probed(method, fraction)
        variants[f"{method}_finetune"] = _fine_tuned(method, fraction)
    return base.Experiment(
        name=name,
        title=(f"Self-supervised pre-training "
               f"({', '.join(_DISPLAY_NAMES[method] for method in methods)}) vs "
               f"supervised, {fraction:.0%} of labels"),
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
        variants=variants,
        baseline="supervised",
        epochs=40,
        figures=_draw_vae_pictures,
        ignored_settings={
            "trainer.batch_size": f"pre-training uses batches of {PRETRAIN_BATCH_SIZE}",
            "trainer.epochs": f"pre-training runs {PRETRAIN_EPOCHS} epochs "
                              f"({QUICK_PRETRAIN_EPOCHS} with --quick)",
        },
        full_only=name in FULL_ONLY,
        claim=base.Claim(
            text=f"SimCLR pre-training beats supervised training with {fraction:.0%} of the "
                 "labels (Chen et al. 2020)",
            variant="simclr_finetune",
            why_held="the encoder learned digit features from the unlabeled images",
            why_not="20 epochs of pre-training on 1,347 8x8 images give the supervised CNN "
                    "little to catch up on at this label count",
        ),
    )


base.register_experiment(_experiment("ssl_core", LABEL_FRACTIONS["ssl"], CORE_METHODS))
for _name, _fraction in LABEL_FRACTIONS.items():
    base.register_experiment(_experiment(_name, _fraction))
