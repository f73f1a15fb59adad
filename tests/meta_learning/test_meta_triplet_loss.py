"""TripletLoss (semi-hard, batch-hard, batch-all) and ContrastiveLoss against float64
numpy references of the published algorithms."""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.losses import ContrastiveLoss
from keras_efficient.losses import TripletLoss


def _distances(embeddings, metric):
    differences = embeddings[:, None, :] - embeddings[None, :, :]
    squared = np.sum(differences**2, axis=-1)
    if metric == "squared-L2":
        return squared
    if metric == "L2":
        return np.sqrt(squared)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    distances = np.maximum(1.0 - unit @ unit.T, 0.0)
    np.fill_diagonal(distances, 0.0)
    return distances


def semi_hard_reference(labels, embeddings, margin, metric="L2"):
    """FaceNet semi-hard mining, one anchor-positive pair at a time (float64)."""
    d = _distances(embeddings, metric)
    losses = []
    for a in range(len(labels)):
        negatives = [d[a, n] for n in range(len(labels)) if labels[n] != labels[a]]
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [value for value in negatives if value > d[a, p]]
            negative = min(farther) if farther else max(negatives, default=0.0)
            losses.append(max(margin + d[a, p] - negative, 0.0))
    return float(np.mean(losses)) if losses else 0.0


def tfa_semi_hard_formula(labels, embeddings, margin, metric="L2"):
    """TF Addons' `triplet_semihard_loss`, its tiled-mask formula written in numpy."""
    d = _distances(embeddings, metric)
    size = len(labels)
    adjacency = labels[:, None] == labels[None, :]
    adjacency_not = ~adjacency
    d_tile = np.tile(d, (size, 1))
    mask = np.tile(adjacency_not, (size, 1)) & (d_tile > d.T.reshape(-1, 1))
    mask_final = (mask.sum(axis=1, keepdims=True) > 0).reshape(size, size).T

    def masked_minimum(data, data_mask):
        maximums = data.max(axis=1, keepdims=True)
        return ((data - maximums) * data_mask).min(axis=1, keepdims=True) + maximums

    def masked_maximum(data, data_mask):
        minimums = data.min(axis=1, keepdims=True)
        return ((data - minimums) * data_mask).max(axis=1, keepdims=True) + minimums

    outside = masked_minimum(d_tile, mask).reshape(size, size).T
    inside = np.tile(masked_maximum(d, adjacency_not), (1, size))
    loss_matrix = margin + d - np.where(mask_final, outside, inside)
    mask_positives = adjacency.astype(np.float64) - np.eye(size)
    return float(np.sum(np.maximum(loss_matrix * mask_positives, 0.0)) / mask_positives.sum())


def batch_hard_reference(labels, embeddings, margin, metric="L2"):
    """Hermans et al. batch-hard: per anchor the hardest positive and negative."""
    d = _distances(embeddings, metric)
    losses = []
    for a in range(len(labels)):
        positives = [d[a, p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        negatives = [d[a, n] for n in range(len(labels)) if labels[n] != labels[a]]
        # As TF Addons: no positive counts as 0, no negative as the farthest sample.
        hardest_negative = min(negatives) if negatives else d[a].max()
        losses.append(max(margin + max(positives, default=0.0) - hardest_negative, 0.0))
    return float(np.mean(losses))


def batch_all_reference(labels, embeddings, margin, metric="L2"):
    """Hermans et al. batch-all, averaged over the non-zero triplet losses."""
    d = _distances(embeddings, metric)
    active = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(len(labels)):
                if labels[n] != labels[a] and margin + d[a, p] - d[a, n] > 0:
                    active.append(margin + d[a, p] - d[a, n])
    return float(np.mean(active)) if active else 0.0


REFERENCES = {"semi_hard": semi_hard_reference, "batch_hard": batch_hard_reference,
              "batch_all": batch_all_reference}


def _batch(seed, size=12, dim=4, classes=4):
    """Random embeddings with classes of 1 to several examples, plus exact ties."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size)
    labels[-1] = classes  # a class with a single example
    embeddings = rng.normal(size=(size, dim))
    embeddings[1] = embeddings[0]  # a zero distance (whatever the labels)
    return labels.astype("int32"), embeddings.astype("float32")


def _tied_batch():
    """Integer coordinates: many exactly equal distances, exact in float32 too."""
    embeddings = np.array([[1, 1], [2, 1], [1, 2], [2, 2], [3, 1], [1, 3], [3, 3], [4, 4]],
                          "float32")
    return np.array([0, 0, 1, 1, 2, 2, 0, 3], "int32"), embeddings


@pytest.mark.parametrize("metric", ["L2", "squared-L2", "angular"])
@pytest.mark.parametrize("mining", list(REFERENCES))
def test_triplet_loss__equals_reference_on_random_batches(mining, metric):
    for seed in range(3):
        labels, embeddings = _batch(seed)
        loss = TripletLoss(margin=0.5, mining=mining, distance_metric=metric)
        expected = REFERENCES[mining](labels, embeddings.astype(np.float64), 0.5, metric)
        np.testing.assert_allclose(float(loss(labels, embeddings)), expected, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("mining", list(REFERENCES))
def test_triplet_loss__equals_reference_with_tied_distances(mining):
    labels, embeddings = _tied_batch()
    for margin in (0.0, 1.0, 2.5):
        expected = REFERENCES[mining](labels, embeddings.astype(np.float64), margin)
        loss = TripletLoss(margin=margin, mining=mining)
        np.testing.assert_allclose(float(loss(labels, embeddings)), expected, atol=1e-6)


@pytest.mark.parametrize("metric", ["L2", "squared-L2", "angular"])
def test_triplet_loss__semi_hard_equals_tf_addons_formula(metric):
    # Collinear points tie at angle 0 only in exact arithmetic: ties for distances only.
    tied = [_tied_batch()] if metric != "angular" else []
    for labels, embeddings in tied + [_batch(seed) for seed in range(3)]:
        expected = tfa_semi_hard_formula(labels, embeddings.astype(np.float64), 1.0, metric)
        # Both references agree, and the loss equals them.
        assert semi_hard_reference(labels, embeddings.astype(np.float64), 1.0, metric) \
            == pytest.approx(expected, abs=1e-12)
        loss = TripletLoss(distance_metric=metric)
        np.testing.assert_allclose(float(loss(labels[:, None], embeddings)), expected, atol=1e-5)


def test_triplet_loss__batch_without_positive_pairs_is_zero():
    embeddings = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    for mining in ("semi_hard", "batch_all"):
        assert float(TripletLoss(mining=mining)(np.arange(4), embeddings)) == 0.0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_triplet_loss__gradient_finite_for_coinciding_embeddings():
    import tensorflow as tf

    labels, embeddings = _batch(0)
    embeddings = tf.constant(embeddings)
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        value = TripletLoss(mining="batch_hard")(labels, embeddings)
    assert np.all(np.isfinite(tape.gradient(value, embeddings).numpy()))


def test_triplet_loss__callable_distance_metric():
    labels, embeddings = _batch(1)

    def manhattan(x):
        return keras.ops.sum(keras.ops.abs(x[:, None, :] - x[None, :, :]), axis=-1)

    d = np.abs(embeddings[:, None, :] - embeddings[None, :, :]).sum(-1).astype(np.float64)
    loss = TripletLoss(mining="batch_hard", distance_metric=manhattan)
    hardest_positive = np.where((labels[:, None] == labels) & ~np.eye(12, dtype=bool), d, 0)
    hardest_negative = np.where(labels[:, None] != labels, d, d.max(1, keepdims=True))
    expected = np.mean(np.maximum(1.0 + hardest_positive.max(1) - hardest_negative.min(1), 0))
    np.testing.assert_allclose(float(loss(labels, embeddings)), expected, rtol=1e-5)


# Every check for the default mining; the others share its code but mine differently,
# so the replica check (mining must see the global batch) runs for each. The harness
# trains an offset added to every embedding: Euclidean distances would not move (their
# gradient is 0), angular ones do.
@pytest.mark.parametrize("mining, check", [("semi_hard", check) for check in testing.LOSS_CHECKS]
                         + [("batch_hard", "replicas"), ("batch_all", "replicas")])
def test_triplet_loss__harness(mining, check):
    labels, embeddings = _batch(2, size=8)
    testing.check_loss(TripletLoss, {"mining": mining, "distance_metric": "angular"}, labels,
                       embeddings, reference=lambda y, e: REFERENCES[mining](y, e, 1.0, "angular"),
                       checks=[check])


@pytest.mark.parametrize("kwargs, message", [
    ({"mining": "hard"}, "argument `mining`"),
    ({"margin": -1.0}, "argument `margin`"),
    ({"distance_metric": "cosine"}, "argument `distance_metric`"),
])
def test_triplet_loss__bad_argument_names_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TripletLoss(**kwargs)


def test_triplet_loss__rejects_embeddings_that_are_not_vectors():
    with pytest.raises(ValueError, match=r"\(batch_size, dim\)"):
        TripletLoss()(np.arange(2), np.zeros((2, 3, 4), "float32"))


def contrastive_reference(similar, distances, margin):
    """Hadsell et al.'s eq. 4 (label 1 = similar, without the factors 1/2), float64."""
    terms = [d**2 if y == 1 else max(margin - d, 0.0) ** 2 for y, d in zip(similar, distances)]
    return float(np.mean(terms))


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_contrastive_loss__harness(check):
    distances = np.abs(np.random.default_rng(0).normal(size=(8,))).astype("float32")
    similar = np.array([1, 0, 1, 0, 0, 1, 1, 0], "float32")
    testing.check_loss(ContrastiveLoss, {"margin": 1.5}, similar, distances,
                       reference=lambda y, d: contrastive_reference(y, d, 1.5), checks=[check])


def test_contrastive_loss__bad_margin_names_it():
    with pytest.raises(ValueError, match="argument `margin`"):
        ContrastiveLoss(margin=-0.5)
