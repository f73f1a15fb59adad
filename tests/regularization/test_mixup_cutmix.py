import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from keras_efficient.data import CutMix
from keras_efficient.data import MixUp

BATCH = 8
HEIGHT, WIDTH = 12, 10  # non-square on purpose


def _constant_images(channels_first=False):
    """Image i is the constant i + 1, so a pixel tells whose it is."""
    values = np.arange(1, BATCH + 1, dtype="float32")[:, None, None, None]
    shape = (BATCH, 2, HEIGHT, WIDTH) if channels_first else (BATCH, HEIGHT, WIDTH, 2)
    return values * np.ones(shape, "float32")


def _partners_and_lambda(mixed_labels):
    """Partner j(i) and lam from targets mixed from distinct one-hot labels i."""
    partners, lams = [], []
    for i, row in enumerate(mixed_labels):
        others = np.delete(np.arange(len(row)), i)
        j = others[np.argmax(row[others])]
        partners.append(i if row[j] == 0 else j)
        lams.append(row[i])
    return np.array(partners), np.array(lams)


def _numpy(value):
    return np.asarray(value.numpy(), np.float64)


def test_mix_up__images_and_labels_mixed_by_the_same_lambda():
    images = _constant_images()
    for call in range(5):
        mixed_images, mixed_labels = map(_numpy, MixUp(alpha=1.0, num_classes=BATCH, seed=call)(
            images, np.arange(BATCH)))
        np.testing.assert_allclose(mixed_labels.sum(-1), 1.0, atol=1e-6)
        partners, lams = _partners_and_lambda(mixed_labels)
        np.testing.assert_array_equal(np.sort(partners), np.arange(BATCH))  # a permutation
        moved = partners != np.arange(BATCH)
        assert moved.any()
        lam = lams[moved][0]
        np.testing.assert_allclose(lams[moved], lam, atol=1e-6)  # one lam per batch
        own, other = np.arange(1, BATCH + 1), partners + 1.0
        expected = lam * own + (1 - lam) * other
        np.testing.assert_allclose(mixed_images[:, 0, 0, 0], np.where(moved, expected, own),
                                   atol=1e-5)
        # The images alone give the same lam.
        np.testing.assert_allclose((mixed_images[moved, 0, 0, 0] - other[moved])
                                   / (own[moved] - other[moved]), lam, atol=1e-4)
        assert np.ptp(mixed_images, axis=(1, 2, 3)).max() == 0  # a uniform blend


def test_mix_up__label_smoothing_folded_into_one_hot_labels():
    images = _constant_images()
    one_hot = np.eye(BATCH, dtype="float32")
    _, plain = MixUp(alpha=0.4, seed=7)(images, one_hot)
    _, smoothed = MixUp(alpha=0.4, label_smoothing=0.1, seed=7)(images, one_hot)
    partners, lams = _partners_and_lambda(_numpy(plain))
    lam = lams[partners != np.arange(BATCH)][0]
    smooth = 0.9 * one_hot + 0.1 / BATCH
    expected = lam * smooth + (1 - lam) * smooth[partners]
    np.testing.assert_allclose(_numpy(smoothed), expected, atol=1e-6)
    np.testing.assert_allclose(_numpy(smoothed).sum(-1), 1.0, atol=1e-6)


def test_mix_up__lambda_follows_beta_alpha_alpha():
    alpha = 0.4
    images = _constant_images()
    dataset = tf.data.Dataset.from_tensors((images, np.arange(BATCH))).repeat(300)
    lams = []
    for _, labels in dataset.map(MixUp(alpha=alpha, num_classes=BATCH, seed=0)):
        partners, row_lams = _partners_and_lambda(_numpy(labels))
        moved = partners != np.arange(BATCH)
        if moved.any():
            lams.append(row_lams[moved][0])
    result = scipy.stats.kstest(lams, scipy.stats.beta(alpha, alpha).cdf)
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_cut_mix__one_box_pasted_and_lambda_is_its_area(data_format):
    channels_first = data_format == "channels_first"
    images = _constant_images(channels_first)
    cut_mix = CutMix(alpha=1.0, num_classes=BATCH, seed=3, data_format=data_format)
    clipped_or_empty = 0
    for _ in range(20):
        mixed_images, mixed_labels = map(_numpy, cut_mix(images, np.arange(BATCH)))
        np.testing.assert_allclose(mixed_labels.sum(-1), 1.0, atol=1e-6)
        partners, lams = _partners_and_lambda(mixed_labels)
        if channels_first:
            mixed_images = np.moveaxis(mixed_images, 1, -1)
        boxes = mixed_images != np.arange(1, BATCH + 1)[:, None, None, None]
        for i in np.flatnonzero(partners != np.arange(BATCH)):
            box = boxes[i, :, :, 0]
            rows, cols = box.any(1), box.any(0)
            np.testing.assert_array_equal(box, rows[:, None] & cols[None, :])  # a rectangle
            assert np.all(boxes[i] == box[:, :, None])  # every channel
            np.testing.assert_array_equal(mixed_images[i][boxes[i]], partners[i] + 1)
            np.testing.assert_array_equal(box, boxes[partners != np.arange(BATCH)][0, :, :, 0])
            np.testing.assert_allclose(lams[i], 1 - box.sum() / (HEIGHT * WIDTH), atol=1e-6)
            np.testing.assert_allclose(mixed_labels[i, partners[i]], 1 - lams[i], atol=1e-6)
            # A clipped box touches the border; an uncut side of the box is even (2 * cut // 2).
            on_border = rows[0] or rows[-1] or cols[0] or cols[-1]
            clipped_or_empty += bool(on_border) or not box.any()
            if not on_border and box.any():
                assert rows.sum() % 2 == 0 and cols.sum() % 2 == 0
    assert clipped_or_empty > 0  # the border case was exercised


def test_cut_mix__keeps_integer_images_and_mix_up_makes_them_float():
    images = (_constant_images() * 10).astype("uint8")
    cut_images, _ = CutMix(num_classes=BATCH, seed=1)(images, np.arange(BATCH))
    assert cut_images.dtype == tf.uint8
    mixed_images, _ = MixUp(num_classes=BATCH, seed=1)(images, np.arange(BATCH))
    assert mixed_images.dtype == tf.float32


@pytest.mark.parametrize("mixer_cls", [MixUp, CutMix])
def test_batch_mixing__integer_labels_of_shape_n_1(mixer_cls):
    labels = np.arange(BATCH)
    _, from_column = mixer_cls(num_classes=BATCH, seed=5)(_constant_images(), labels[:, None])
    _, from_one_hot = mixer_cls(seed=5)(_constant_images(), np.eye(BATCH, dtype="float32"))
    np.testing.assert_allclose(_numpy(from_column), _numpy(from_one_hot), atol=0)


@pytest.mark.parametrize("mixer_cls", [MixUp, CutMix])
def test_batch_mixing__integer_labels_without_num_classes(mixer_cls):
    with pytest.raises(ValueError, match="Integer labels need the number of classes: pass "
                                         "`num_classes`"):
        mixer_cls(seed=1)(_constant_images(), np.arange(BATCH))


@pytest.mark.parametrize("mixer_cls", [MixUp, CutMix])
def test_batch_mixing__seed_reproduces_and_calls_differ(mixer_cls):
    images, labels = _constant_images(), np.arange(BATCH)
    first, second = mixer_cls(num_classes=BATCH, seed=11), mixer_cls(num_classes=BATCH, seed=11)
    a1, a2 = first(images, labels), first(images, labels)
    b1 = second(images, labels)
    np.testing.assert_array_equal(_numpy(a1[0]), _numpy(b1[0]))
    np.testing.assert_array_equal(_numpy(a1[1]), _numpy(b1[1]))
    assert not np.array_equal(_numpy(a1[1]), _numpy(a2[1]))

    def pipeline():
        dataset = tf.data.Dataset.from_tensor_slices((np.concatenate([images] * 4),
                                                      np.tile(labels, 4)))
        return dataset.batch(BATCH).map(mixer_cls(num_classes=BATCH, seed=11))

    def epoch(dataset):
        return np.concatenate([_numpy(y) for _, y in dataset])

    dataset = pipeline()
    first_epoch, second_epoch = epoch(dataset), epoch(dataset)
    np.testing.assert_array_equal(first_epoch, epoch(pipeline()))
    assert not np.array_equal(first_epoch, second_epoch)  # each epoch draws anew


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"alpha": 0.0}, ValueError, r"argument `alpha`. Expected a float value > 0"),
        ({"alpha": -1.0}, ValueError, r"argument `alpha`"),
        ({"label_smoothing": 1.5}, ValueError,
         r"argument `label_smoothing`. Expected a float value in \[0, 1\]"),
        ({"num_classes": 1}, ValueError, r"argument `num_classes`. Expected an integer >= 2"),
        ({"seed": 1.5}, TypeError, r"argument `seed`"),
    ],
)
@pytest.mark.parametrize("mixer_cls", [MixUp, CutMix])
def test_batch_mixing__bad_arguments(mixer_cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        mixer_cls(**kwargs)


def test_cut_mix__rejects_unbatched_images():
    with pytest.raises(ValueError, match="CutMix expects batches.*images.shape=\\(12, 10, 2\\)"):
        CutMix(num_classes=BATCH, seed=1)(_constant_images()[0], np.arange(BATCH))


def test_cut_mix__bad_data_format():
    with pytest.raises(ValueError, match="argument `data_format`"):
        CutMix(data_format="channels_middle")
