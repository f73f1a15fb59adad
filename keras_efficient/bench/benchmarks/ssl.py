"""Self-supervised learning costs: NT-Xent loss+gradient and a SimCLR train step.

`ssl_nt_xent`: one unit is the NT-Xent loss and its gradient with respect to
both views' embeddings (2 x 1024 embeddings of dim 128, compiled: `tf.function`
or `jax.jit`), for `ke.losses.NTXent`, a straightforward implementation (the full
2N x 2N similarity matrix, diagonal masked, sparse cross-entropy) and
keras-cv 0.9's `SimCLRLoss` (four N x N blocks; it returns twice the SimCLR
loss). Claim: ours is not slower than either (keras-cv's is left out when it
is not importable).

`ssl_simclr_step`: one unit is one `train_on_batch` of 128 CIFAR-sized
images (32 x 32 x 3) for `ke.models.SimCLR` and for a keras-io-style
contrastive model (two separate encoder passes, N - 1 cross-view negatives),
with the same encoder, projection head and `SimCLRAugmentation`. Claim: ours
(all 2N - 2 negatives) is not slower. Both do the same work per image (two
augmentations, two encoder passes; the loss is a few percent of the step), so
the ratio sits at 1.0 and its bound, 1.05, is this machine's run-to-run noise.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import keras_efficient as ke
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case

_PAIRS, _DIM, _TEMPERATURE = 1024, 128, 0.5
_IMAGES = 128


def _embeddings():
    rng = np.random.default_rng(0)
    return [keras.ops.convert_to_tensor(rng.normal(size=(_PAIRS, _DIM)).astype("float32"))
            for _ in range(2)]


def straightforward_nt_xent(z_a, z_b, temperature=_TEMPERATURE):
    """The textbook NT-Xent: one (2N, 2N) similarity matrix, diagonal masked."""
    z = ops.normalize(ops.concatenate([z_a, z_b], axis=0), axis=1)
    n = ops.shape(z_a)[0]
    logits = ops.matmul(z, ops.transpose(z)) / temperature - 1e9 * ops.eye(2 * n)
    labels = ops.concatenate([ops.arange(n, 2 * n), ops.arange(n)], axis=0)
    return ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def _compiled_value_and_gradients(fn):
    """`fn(z_a, z_b)` and its gradients, compiled: `tf.function` or `jax.jit`."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))

    @tf.function
    def step(z_a, z_b):
        with tf.GradientTape() as tape:
            tape.watch([z_a, z_b])
            loss = fn(z_a, z_b)
        return loss, tape.gradient(loss, [z_a, z_b])

    return step


def _loss_case(loss_fn):
    def setup():
        z_a, z_b = _embeddings()
        step = _compiled_value_and_gradients(loss_fn)
        return lambda: step(z_a, z_b)

    return setup


def _keras_cv_loss():
    from keras_cv.losses import SimCLRLoss

    return SimCLRLoss(temperature=_TEMPERATURE)


def _keras_cv_available():
    try:
        _keras_cv_loss()
    except Exception:  # noqa: BLE001  (any import failure means: leave the case out)
        return False
    return True


def _encoder():
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])


class KerasIOContrastiveModel(keras.Model):
    """The keras-io SimCLR example's train step: views encoded separately, N - 1 negatives."""

    def __init__(self, encoder, projection_head, augmenter, temperature):
        super().__init__()
        self.encoder, self.projection_head = encoder, projection_head
        self.augmenter, self.temperature = augmenter, temperature

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        view_a = self.augmenter(images, training=True)
        view_b = self.augmenter(images, training=True)
        with tf.GradientTape() as tape:
            z_a = self.projection_head(self.encoder(view_a, training=True), training=True)
            z_b = self.projection_head(self.encoder(view_b, training=True), training=True)
            z_a, z_b = tf.math.l2_normalize(z_a, 1), tf.math.l2_normalize(z_b, 1)
            similarities = tf.matmul(z_a, z_b, transpose_b=True) / self.temperature
            labels = tf.range(tf.shape(z_a)[0])
            loss = (keras.losses.sparse_categorical_crossentropy(labels, similarities, True)
                    + keras.losses.sparse_categorical_crossentropy(
                        labels, tf.transpose(similarities), True))
            loss = tf.reduce_mean(loss) / 2
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}


def _step_case(make_model):
    def setup():
        keras.utils.set_random_seed(0)
        images = np.random.default_rng(0).uniform(size=(_IMAGES, 32, 32, 3)).astype("float32")
        model = make_model(_encoder(), ke.layers.ProjectionHead((64,), 32),
                           ke.layers.SimCLRAugmentation.from_preset("cifar", seed=0))
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        model(images[:2])  # build
        return lambda: model.train_on_batch(images)

    return setup


_LOSS_CASES = [
    Case("straightforward", _loss_case(straightforward_nt_xent)),
    Case("ke.NTXent", _loss_case(ke.losses.NTXent(temperature=_TEMPERATURE)), max_ratio=1.0,
         max_ratio_to={"keras_cv.SimCLRLoss": 1.0}),
]
if _keras_cv_available():
    _LOSS_CASES.append(Case("keras_cv.SimCLRLoss", _loss_case(_keras_cv_loss())))

BENCHMARKS = [
    Benchmark(
        name="ssl_nt_xent",
        description=f"NT-Xent loss + gradient, 2 x {_PAIRS} embeddings of dim {_DIM}"
                    + ("" if _keras_cv_available() else " (keras-cv not importable: left out)"),
        cases=_LOSS_CASES,
        baseline="straightforward",
    ),
    Benchmark(
        name="ssl_simclr_step",
        description=f"SimCLR train step, {_IMAGES} images 32x32x3, augmentation included",
        cases=[
            Case("keras_io_style", _step_case(
                lambda e, h, a: KerasIOContrastiveModel(e, h, a, _TEMPERATURE))),
            Case("ke.SimCLR", _step_case(
                lambda e, h, a: ke.models.SimCLR(e, h, a, temperature=_TEMPERATURE)),
                max_ratio=1.05),
        ],
        baseline="keras_io_style",
        rounds=20,
    ),
]
