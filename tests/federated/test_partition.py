import numpy as np
import pytest

from keras_efficient import federated

LABELS = np.repeat(np.arange(10), 30)  # 300 examples, 10 classes


def _assert_exact_cover(part, num_examples):
    merged = np.concatenate(part.indices)
    np.testing.assert_array_equal(np.sort(merged), np.arange(num_examples))


@pytest.mark.parametrize(
    "partitioner, kwargs",
    [
        (federated.iid_partition, {}),
        (federated.shard_partition, {}),
        (federated.dirichlet_partition, {"alpha": 0.5}),
        (federated.quantity_skew_partition, {"alpha": 0.5}),
    ],
)
def test_partitioners__every_example_exactly_once(partitioner, kwargs):
    part = partitioner(LABELS, num_clients=10, seed=3, **kwargs)
    assert part.num_clients == 10
    _assert_exact_cover(part, len(LABELS))
    assert min(part.sizes) >= 1
    again = partitioner(LABELS, num_clients=10, seed=3, **kwargs)
    for a, b in zip(part.indices, again.indices):
        np.testing.assert_array_equal(a, b)  # seeded


def test_iid_partition__equal_sizes_and_all_classes():
    part = federated.iid_partition(LABELS, num_clients=3, seed=0)
    assert part.sizes.tolist() == [100, 100, 100]
    assert part.summary()["classes"] == [10, 10, 10]


def test_shard_partition__two_classes_per_client_with_uneven_classes():
    # 1,000 examples of very unequal classes, 40 shards: no shard spans two classes.
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), [40, 60, 80, 100, 120, 150, 90, 110, 130, 120]))
    part = federated.shard_partition(labels, num_clients=20, seed=0)
    assert max(part.summary()["classes"]) <= 2
    _assert_exact_cover(part, len(labels))
    assert part.sizes.max() - part.sizes.min() < 30  # shards of near-equal size


def test_shard_partition__at_most_two_classes_per_client():
    rng = np.random.default_rng(0)
    labels = rng.permutation(LABELS)
    part = federated.shard_partition(labels, num_clients=15, seed=1)
    classes = part.summary()["classes"]
    assert max(classes) <= 2
    assert part.sizes.tolist() == [20] * 15  # 30 shards of 10


def test_dirichlet_partition__large_alpha_approaches_iid_small_alpha_skews():
    def mean_tv_distance(alpha):
        part = federated.dirichlet_partition(LABELS, num_clients=5, alpha=alpha, seed=0)
        distances = []
        for index in part.indices:
            hist = np.bincount(LABELS[index], minlength=10) / len(index)
            distances.append(0.5 * np.abs(hist - 0.1).sum())
        return np.mean(distances)

    assert mean_tv_distance(1e4) < 0.03
    assert mean_tv_distance(0.1) > 0.4


def test_quantity_skew_partition__small_alpha_unequal_sizes():
    part = federated.quantity_skew_partition(LABELS, num_clients=10, alpha=0.2, seed=0)
    assert part.sizes.max() > 4 * part.sizes.min()


def test_partition__split_and_summary():
    x = np.arange(len(LABELS))[:, None] * 1.0
    part = federated.shard_partition(LABELS, num_clients=5, seed=0)
    for (xk, yk), index in zip(part.split(x, LABELS), part.indices):
        np.testing.assert_array_equal(xk[:, 0], index)
        np.testing.assert_array_equal(yk, LABELS[index])
    assert "5 clients" in repr(part)
    assert sum(part.summary()["examples"]) == len(LABELS)


def test_partition__one_hot_labels():
    one_hot = np.eye(10)[LABELS]
    part = federated.shard_partition(one_hot, num_clients=5, seed=0)
    assert max(part.summary()["classes"]) <= 2


def test_partitioners__bad_input():
    with pytest.raises(ValueError, match="num_clients"):
        federated.iid_partition(LABELS, num_clients=0)
    with pytest.raises(ValueError, match="num_clients"):
        federated.iid_partition(LABELS[:5], num_clients=6)
    with pytest.raises(ValueError, match="alpha"):
        federated.dirichlet_partition(LABELS, 4, alpha=0.0)
    with pytest.raises(ValueError, match="shards"):
        federated.shard_partition(LABELS, num_clients=200)
    with pytest.raises(ValueError, match="min_size"):
        federated.dirichlet_partition(LABELS, 10, alpha=0.01, min_size=30, seed=0,
                                      max_attempts=3)
    with pytest.raises(TypeError, match="labels"):
        federated.iid_partition(np.linspace(0, 1, 10), num_clients=2)
    with pytest.raises(ValueError, match="Client 1 has no data"):
        federated.Partition([np.array([0, 1]), np.array([], "int64")], num_examples=2)
    with pytest.raises(ValueError, match="exactly once"):
        federated.Partition([np.array([0, 1]), np.array([1])], num_examples=3)
    with pytest.raises(ValueError, match="at least one client"):
        federated.Partition([], num_examples=3)
    with pytest.raises(ValueError, match="examples"):
        federated.iid_partition(LABELS, 2).split(np.zeros((3, 1)), np.zeros(3))
