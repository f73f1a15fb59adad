import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke
from keras_efficient import testing
from keras_efficient.ssl.random_resized_crop import _interpolation_matrix

SIZE = 16
ROWS, COLUMNS = np.meshgrid(np.arange(SIZE, dtype=np.float32), np.arange(SIZE, dtype=np.float32),
                            indexing="ij")
# A linear ramp: bilinear resizing keeps it linear, so each output's slopes
# give back the crop's height and width exactly.
RAMP = np.repeat(np.stack([ROWS, COLUMNS], -1)[None], 64, axis=0)


def _crop_sizes(output):
    output = np.asarray(output, np.float64)
    height = (output[:, -1, 0, 0] - output[:, 0, 0, 0]) * SIZE / (SIZE - 1)
    width = (output[:, 0, -1, 1] - output[:, 0, 0, 1]) * SIZE / (SIZE - 1)
    return height, width


def test_random_resized_crop__crops_area_and_ratio_in_range_per_image():
    crop = ke.layers.RandomResizedCrop(scale=(0.2, 0.6), ratio=(0.75, 1.25), seed=2)
    height, width = _crop_sizes(crop(RAMP, training=True))
    area = height * width / SIZE**2
    assert np.all(area > 0.2 - 1e-4) and np.all(area < 0.6 + 1e-4)
    assert np.all(width / height > 0.75 - 1e-4) and np.all(width / height < 1.25 + 1e-4)
    assert np.std(area) > 0.05  # a different crop for every image of the batch


def test_random_resized_crop__full_crop_is_identity_and_inference_passes_through():
    crop = ke.layers.RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=1)
    np.testing.assert_allclose(crop(RAMP, training=True), RAMP, atol=1e-5)
    np.testing.assert_array_equal(ke.layers.RandomResizedCrop()(RAMP, training=False), RAMP)


def test_random_resized_crop__interpolation_equals_tf_image_resize_of_the_window():
    # Rows/columns [4, 12) upscaled 2x: tf.image.resize of the window, wherever
    # both sample inside it (away from the window's border).
    image = np.random.default_rng(0).random((1, SIZE, SIZE, 1)).astype("float32")
    matrix = np.asarray(_interpolation_matrix(np.array([4.0], "float32"),
                                              np.array([8.0], "float32"), SIZE))[0]
    expected = tf.image.resize(image[:, 4:12, 4:12], (SIZE, SIZE), "bilinear").numpy()
    actual = np.einsum("ih,jw,bhwc->bijc", matrix, matrix, image)
    np.testing.assert_allclose(actual[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-5)


def test_simclr_augmentation__applies_each_transform_with_its_probability():
    # One colour per image: any crop leaves it unchanged, any jitter changes it.
    colours = np.random.default_rng(1).uniform(0.2, 0.8, (2000, 1, 1, 3))
    images = np.broadcast_to(colours, (2000, 4, 4, 3)).astype("float32")
    augment = ke.layers.SimCLRAugmentation(scale=(1.0, 1.0), flip=False, jitter_strength=1.0,
                                           jitter_probability=0.8, grayscale_probability=0.0,
                                           seed=3)
    changed = np.any(np.abs(np.asarray(augment(images)) - images) > 1e-6, axis=(1, 2, 3))
    assert changed.mean() == pytest.approx(0.8, abs=0.04)
    gray = ke.layers.SimCLRAugmentation(scale=(1.0, 1.0), flip=False, jitter_strength=0.0,
                                        grayscale_probability=0.2, seed=3)(images)
    is_gray = np.all(np.ptp(np.asarray(gray), axis=-1) < 1e-6, axis=(1, 2))
    assert is_gray.mean() == pytest.approx(0.2, abs=0.04)


def test_simclr_augmentation__seeded_two_views_in_tf_data_differ():
    images = np.random.default_rng(2).random((8, SIZE, SIZE, 3)).astype("float32")

    def views(seed):
        augment = ke.layers.SimCLRAugmentation.from_preset("cifar", seed=seed)
        dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(augment.two_views)
        return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]

    first, again = views(7), views(7)
    for batch, same in zip(first, again):
        np.testing.assert_allclose(batch["view_a"], same["view_a"])
        assert np.abs(batch["view_a"] - batch["view_b"]).mean() > 1e-3


def test_simclr_augmentation__trains_in_a_jitted_model_after_a_tf_data_map():
    # On JAX the map runs TensorFlow ops; the layer must be back on JAX's after it.
    images = np.random.default_rng(5).random((4, 8, 8, 3)).astype("float32")
    augment = ke.layers.SimCLRAugmentation.from_preset("cifar", seed=5)
    next(iter(tf.data.Dataset.from_tensor_slices(images).batch(4).map(augment.two_views)))
    model = keras.Sequential([keras.Input((8, 8, 3)), augment,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    history = model.fit(images, np.zeros((4, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    augmented = np.asarray(augment(images))
    assert np.abs(augmented - images).mean() > 1e-3
    assert 0.0 <= augmented.min() and augmented.max() <= 1.0


def test_simclr_augmentation__compiles_with_xla_on_one_channel_images():
    # RGB images are compiled in the harness's `jit` check.
    augment = ke.layers.SimCLRAugmentation.from_preset("digits", seed=1)
    images = np.random.default_rng(3).random((4, SIZE, SIZE, 1)).astype("float32")
    output = tf.function(augment, jit_compile=True)(images)
    assert output.shape == images.shape and np.all(np.isfinite(output))
    # Every image augmented, within the value range (XLA draws differ from eager ones).
    output = np.asarray(output)
    assert 0.0 <= output.min() and output.max() <= 1.0
    assert np.all(np.abs(output - images).mean(axis=(1, 2, 3)) > 0.01)


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_simclr_augmentation__harness(check):
    images = np.random.default_rng(4).random((4, 8, 8, 3)).astype("float32")
    testing.check_layer(ke.layers.SimCLRAugmentation, {"seed": 1}, images, checks=[check],
                        random_in_training=True)


# jit, bfloat16 and replicas run in the SimCLRAugmentation harness, which includes the crop.
@pytest.mark.parametrize("check", ["config", "saving"])
def test_random_resized_crop__harness(check):
    testing.check_layer(ke.layers.RandomResizedCrop, {"scale": (0.5, 1.0), "seed": 1}, RAMP[:4],
                        checks=[check], random_in_training=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": (0.0, 1.0)}, "argument `scale`"),
    ({"scale": (0.5, 1.5)}, "argument `scale`"),
    ({"ratio": (2.0, 1.0)}, "argument `ratio`"),
    ({"data_format": "nhwc"}, "argument `data_format`"),
])
def test_random_resized_crop__rejects_bad_ranges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ke.layers.RandomResizedCrop(**kwargs)


def test_random_resized_crop__accepts_numpy_floats():
    crop = ke.layers.RandomResizedCrop(scale=(np.float32(0.5), np.float64(1.0)))
    assert crop.scale == (0.5, 1.0)


def test_simclr_augmentation__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `jitter_probability`"):
        ke.layers.SimCLRAugmentation(jitter_probability=1.5)
    with pytest.raises(ValueError, match="argument `preset`"):
        ke.layers.SimCLRAugmentation.from_preset("mnist")
    with pytest.raises(TypeError, match="argument `seed`.*seed=1.5"):
        ke.layers.SimCLRAugmentation(seed=1.5)
