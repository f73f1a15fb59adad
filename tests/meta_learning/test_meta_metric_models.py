"""Prototypical, matching and relation networks and the siamese network: scores
against float64 numpy references, input errors, and the shared model harness."""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.losses import ContrastiveLoss
from keras_efficient.models import MatchingNetwork
from keras_efficient.models import PrototypicalNetwork
from keras_efficient.models import RelationNetwork
from keras_efficient.models import SiameseNetwork

DIM = 3


def _episodes(meta_batch=2, n_way=3, n_shot=2, n_query=2, seed=0):
    """Random episodes in the sampler's format, labels in a shuffled order."""
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(n_way), n_shot))
                          for _ in range(meta_batch)]).astype("int32")
    query_y = np.tile(np.repeat(np.arange(n_way), n_query), (meta_batch, 1)).astype("int32")
    support_x = rng.normal(size=(meta_batch, n_way * n_shot, DIM)).astype("float32")
    query_x = rng.normal(size=(meta_batch, n_way * n_query, DIM)).astype("float32")
    return (support_x, support_y, query_x), query_y


def _encoder():
    return keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(4, activation="tanh")])


def _embed(encoder, x):
    """The encoder in float64 numpy, from its weights."""
    kernel, bias = (np.asarray(w, np.float64) for w in encoder.layers[-1].get_weights())
    return np.tanh(np.asarray(x, np.float64) @ kernel + bias)


def _prototypes(support, support_y, n_way):
    return np.stack([support[support_y == k].mean(axis=0) for k in range(n_way)])


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("n_way", [3, None])
def test_prototypical_network__logits_are_negative_squared_distances(n_way):
    (support_x, support_y, query_x), _ = _episodes()
    model = PrototypicalNetwork(_encoder(), n_way=n_way)
    logits = np.asarray(model((support_x, support_y, query_x)))
    assert logits.shape == (2, 6, n_way or 6)
    for episode in range(2):
        support = _embed(model.encoder, support_x[episode])
        query = _embed(model.encoder, query_x[episode])
        prototypes = _prototypes(support, support_y[episode], 3)
        expected = -np.sum((query[:, None] - prototypes[None]) ** 2, axis=-1)
        np.testing.assert_allclose(logits[episode, :, :3], expected, rtol=1e-5, atol=1e-6)
    # Labels with no support example (only without `n_way`) are masked.
    assert np.all(logits[:, :, 3:] == -1e9)


def test_prototypical_network__cosine_logits():
    (support_x, support_y, query_x), _ = _episodes(seed=1)
    model = PrototypicalNetwork(_encoder(), distance="cosine", n_way=3)
    logits = np.asarray(model((support_x, support_y, query_x)))
    for episode in range(2):
        prototypes = _prototypes(_embed(model.encoder, support_x[episode]), support_y[episode], 3)
        expected = _unit(_embed(model.encoder, query_x[episode])) @ _unit(prototypes).T
        np.testing.assert_allclose(logits[episode], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_way", [3, None])
def test_matching_network__attention_is_softmax_of_cosines_and_logits_its_class_sums(n_way):
    (support_x, support_y, query_x), _ = _episodes(seed=2)
    model = MatchingNetwork(_encoder(), n_way=n_way)
    attention = np.asarray(model.support_attention((support_x, support_y, query_x)))
    logits = np.asarray(model((support_x, support_y, query_x)))
    for episode in range(2):
        cosines = (_unit(_embed(model.encoder, query_x[episode]))
                   @ _unit(_embed(model.encoder, support_x[episode])).T)
        expected = np.exp(cosines) / np.exp(cosines).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(attention[episode], expected, rtol=1e-5, atol=1e-6)
        probabilities = expected @ np.eye(3)[support_y[episode]]
        np.testing.assert_allclose(logits[episode, :, :3], np.log(probabilities), atol=1e-5)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(logits[:, :, 3:] == -1e9)


def test_matching_network__full_context_attention_sums_to_one_and_depends_on_support():
    (support_x, support_y, query_x), _ = _episodes(seed=3)
    model = MatchingNetwork(_encoder(), full_context_embeddings=True, n_way=3)
    attention = np.asarray(model.support_attention((support_x, support_y, query_x)))
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-6)
    # With context, a query's embedding depends on the whole support set: replacing
    # one support item changes the attention over the others too.
    changed = support_x.copy()
    changed[:, 0] += 1.0
    other = np.asarray(model.support_attention((changed, support_y, query_x)))
    plain = MatchingNetwork(model.encoder, n_way=3)
    plain_before = np.asarray(plain.support_attention((support_x, support_y, query_x)))
    plain_after = np.asarray(plain.support_attention((changed, support_y, query_x)))

    def ratio(attention):  # the odds of two untouched support items
        return attention[..., 2] / attention[..., 1]

    np.testing.assert_allclose(ratio(plain_after), ratio(plain_before), rtol=1e-5)
    assert not np.allclose(ratio(other), ratio(attention), rtol=1e-3)


def test_relation_network__scores_are_relation_module_on_class_sums_and_queries():
    (support_x, support_y, query_x), _ = _episodes(seed=4)
    module = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
    model = RelationNetwork(_encoder(), module, n_way=3)
    scores = np.asarray(model((support_x, support_y, query_x)))
    kernel, bias = (np.asarray(w, np.float64) for w in module.get_weights())
    for episode in range(2):
        support = _embed(model.encoder, support_x[episode])
        sums = np.stack([support[support_y[episode] == k].sum(axis=0) for k in range(3)])
        query = _embed(model.encoder, query_x[episode])
        pairs = np.concatenate([np.repeat(sums[None], len(query), 0),
                                np.repeat(query[:, None], 3, 1)], axis=-1)
        expected = 1.0 / (1.0 + np.exp(-(pairs @ kernel + bias)[..., 0]))
        np.testing.assert_allclose(scores[episode], expected, rtol=1e-5, atol=1e-6)


def test_relation_network__loss_is_mse_on_one_hot_labels():
    episode, query_y = _episodes(seed=5)
    model = RelationNetwork(_encoder(), n_way=3)
    model.compile()
    scores = np.asarray(model(episode), np.float64)
    expected = np.mean((scores - np.eye(3)[query_y]) ** 2)
    loss = model.compute_loss(episode, query_y, model(episode))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_relation_network__feature_maps_and_convolutional_module():
    rng = np.random.default_rng(0)
    encoder = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, padding="same")])
    module = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                               keras.layers.Dense(1, activation="sigmoid")])
    model = RelationNetwork(encoder, module)
    episode = (rng.random((2, 4, 4, 4, 1)), np.tile([0, 0, 1, 1], (2, 1)), rng.random((2, 6, 4, 4, 1)))
    scores = np.asarray(model(episode))
    assert scores.shape == (2, 6, 4) and np.all(scores[..., 2:] == 0.0)
    assert np.all((scores[..., :2] > 0) & (scores[..., :2] < 1))


@pytest.mark.parametrize("model_cls", [PrototypicalNetwork, MatchingNetwork, RelationNetwork])
def test_episodic_models__predict_on_episodes_of_several_sizes(model_cls):
    # Keras's predict relaxes the support and query sizes to None after a second size.
    model = model_cls(_encoder())
    for n_way, n_shot in ((3, 2), (2, 1), (4, 1)):
        episode, _ = _episodes(n_way=n_way, n_shot=n_shot)
        logits = model.predict_on_batch(episode)
        assert logits.shape == (2, 2 * n_way, n_way * n_shot)
        np.testing.assert_allclose(logits, model(episode), rtol=1e-5, atol=1e-6)


def test_siamese_network__outputs_euclidean_distances_of_embeddings():
    rng = np.random.default_rng(0)
    x_a, x_b = rng.normal(size=(2, 5, DIM)).astype("float32")
    model = SiameseNetwork(_encoder())
    expected = np.linalg.norm(_embed(model.encoder, x_a) - _embed(model.encoder, x_b), axis=-1)
    np.testing.assert_allclose(np.asarray(model((x_a, x_b))), expected, rtol=1e-5)


@pytest.mark.parametrize("model_cls", [PrototypicalNetwork, RelationNetwork])
def test_episodic_models__learn_a_separable_task(model_cls):
    # Two clusters per episode, labels shuffled per episode: only comparing with
    # the support set solves it.
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, 6, DIM)) * 3
    support_y = np.stack([rng.permutation([0, 0, 1, 1, 2, 2]) for _ in range(2)])
    support_x = np.stack([centers[b][support_y[b] * 2] for b in range(2)]).astype("float32")
    query_y = np.tile([0, 1, 2], (2, 1))
    query_x = np.stack([centers[b][query_y[b] * 2] for b in range(2)]).astype("float32")
    keras.utils.set_random_seed(0)
    model = model_cls(_encoder(), n_way=3)
    model.compile(optimizer=keras.optimizers.Adam(0.05), metrics=["accuracy"])
    episode = (support_x, support_y, query_x)
    before = model.evaluate(episode, query_y, verbose=0, return_dict=True)
    # 80 steps on the same meta-batch, in one epoch.
    repeated = [np.concatenate([x] * 80) for x in (*episode, query_y)]
    model.fit(tuple(repeated[:3]), repeated[3], batch_size=2, verbose=0)
    after = model.evaluate(episode, query_y, verbose=0, return_dict=True)
    assert after["accuracy"] == 1.0 and after["loss"] < before["loss"]


@pytest.mark.parametrize("inputs, message", [
    (lambda e: e[:2], r"\(support_x, support_y, query_x\)"),
    (lambda e: (e[0], e[1][:, :2], e[2]), "same number of support items"),
    (lambda e: (e[0], e[1], e[2][:, :0]), "at least one support and one query item"),
    (lambda e: (e[0][:, :0], e[1][:, :0], e[2]), "at least one support and one query item"),
    (lambda e: (e[0], e[1], e[2][..., :2]), "same shape"),
    (lambda e: (e[0][0], e[1], e[2]), r"\(meta_batch, support_size, \.\.\.\)"),
])
def test_episodic_models__bad_episode_names_the_problem(inputs, message):
    episode, _ = _episodes()
    with pytest.raises(ValueError, match=message):
        PrototypicalNetwork(_encoder())(inputs(episode))


def test_episodic_models__bad_arguments_name_them():
    with pytest.raises(TypeError, match="argument `encoder`"):
        PrototypicalNetwork("conv4")
    with pytest.raises(ValueError, match="argument `distance`"):
        PrototypicalNetwork(_encoder(), distance="euclidean")
    with pytest.raises(ValueError, match="argument `n_way`"):
        MatchingNetwork(_encoder(), n_way=0)
    with pytest.raises(ValueError, match="argument `processing_steps`"):
        MatchingNetwork(_encoder(), full_context_embeddings=True, processing_steps=0)
    with pytest.raises(TypeError, match="argument `relation_module`"):
        RelationNetwork(_encoder(), relation_module="mlp")
    with pytest.raises(ValueError, match="one score"):
        RelationNetwork(_encoder(), keras.layers.Dense(2), n_way=3)(_episodes()[0])


MODELS = {
    "prototypical": lambda: PrototypicalNetwork(_encoder(), n_way=3),
    "matching": lambda: MatchingNetwork(_encoder()),
    "matching_fce": lambda: MatchingNetwork(_encoder(), full_context_embeddings=True, n_way=3),
    "relation": lambda: RelationNetwork(_encoder(), n_way=3),
}
# The full-context LSTMs are slow to trace and compile: the FCE model runs the checks
# its layers add something to (its episodes are as independent as the others').
HARNESS = [(name, check) for name in MODELS for check in testing.MODEL_CHECKS
           if name != "matching_fce" or check in ("config", "saving", "bfloat16")]


def _compile_kwargs():
    return {"optimizer": keras.optimizers.SGD(0.1)}


@pytest.mark.parametrize("name, check", HARNESS)
def test_episodic_models__harness(name, check):
    # A meta-batch of 2 episodes: the replica check gives each replica one episode.
    episode, query_y = _episodes()
    testing.check_model(MODELS[name], _compile_kwargs, episode, query_y, checks=[check])


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_siamese_network__harness(check):
    rng = np.random.default_rng(0)
    pairs = tuple(rng.normal(size=(2, 4, DIM)).astype("float32"))
    testing.check_model(lambda: SiameseNetwork(_encoder()),
                        lambda: {"optimizer": keras.optimizers.SGD(0.1),
                                 "loss": ContrastiveLoss()},
                        pairs, np.array([1, 0, 1, 0], "float32"), checks=[check])
