"""Few-shot classification on rotated digits: metric-based methods and MAML vs the transfer baseline.

The digits rotated by 0/90/180/270° make 40 classes (`ke.data.rotated_digits`):
the 24 of digits 0-5 for meta-training, the 16 of digits 6-9 held out for
meta-testing. Every method trains the same small CNN encoder (the digits CNN
with a linear 64-d embedding as its last layer) for the same number of steps,
once per seed, and is scored on the same seeded 5-way test episodes with 15
queries per class, 1-shot (`few_shot`) and 5-shot (`few_shot_5shot`), by
`evaluate_episodes` (accuracy = mean over episodes, `ci95_pct` = the 95 %
confidence interval's half-width in percentage points, averaged over seeds).
`transfer` (the baseline) pre-trains a linear classifier over the 24 training
classes and fits a new linear head on each support set, `transfer_cosine` the
same with cosine classifiers (Baseline++, Chen et al. 2019); `prototypical` and
`matching` train on 5-way 1-shot episodes with 5 queries per class
(meta-batches of 4), and so does `maml` (second-order MAML on the encoder plus a
5-way linear layer, one inner step of 0.4 as Finn et al. on Omniglot); `siamese`
trains on same/different pairs with the contrastive loss and `triplet` on
batches of 16 classes x 4 images with semi-hard triplet mining, both classified
by the nearest class mean of their embeddings. The 5-shot experiment scores the
models the 1-shot one trained (in one process; the episodic methods train on
1-shot episodes for both). Relation networks are not in the demo: at this
budget they stayed near chance (see the method card). Step times are those of
training.
"""

import keras
import numpy as np

from keras_efficient.data import contrastive_pairs
from keras_efficient.data import episode_dataset
from keras_efficient.data import rotated_digits
from keras_efficient.demo import base
from keras_efficient.losses import ContrastiveLoss
from keras_efficient.losses import TripletLoss
from keras_efficient.models import MAML
from keras_efficient.models import MatchingNetwork
from keras_efficient.models import PrototypicalNetwork
from keras_efficient.models import SiameseNetwork
from keras_efficient.models import TransferBaseline
from keras_efficient.models import evaluate_episodes
from keras_efficient.models import pretraining_classifier

SHOTS = {"few_shot": 1, "few_shot_5shot": 5}  # experiment name -> shots per class
N_WAY, TRAIN_SHOTS, TRAIN_QUERIES, TEST_QUERIES = 5, 1, 5, 15
META_BATCH, STEPS_PER_EPOCH = 4, 25
TEST_EPISODES, QUICK_TEST_EPISODES, TEST_META_BATCH = 600, 100, 10
MAML_INNER_LEARNING_RATE = 0.4  # Finn et al.'s Omniglot value (one inner step)
BATCH_SIZE = 64  # transfer pre-training, siamese pairs and triplet batches
_SPLITS = {}


def _split(name):
    """The meta-train or meta-test classes, loaded once."""
    if name not in _SPLITS:
        _SPLITS[name] = rotated_digits(name)
    return _SPLITS[name]


def _encoder(context):
    """The digits CNN up to its 64-d hidden layer, without the ReLU: cosine attention
    (matching) stalled on non-negative embeddings here."""
    cnn = base.digits_cnn(context)
    return keras.Sequential([keras.Input(cnn.input_shape[1:]), *cnn.layers[:-2],
                             keras.layers.Dense(64, name="embedding")], name="encoder")


def _steps(context):
    return context.epochs * STEPS_PER_EPOCH


def _test_episodes(context, n_shot):
    x, y = _split("test")
    count = QUICK_TEST_EPISODES if context.settings.quick else TEST_EPISODES
    # The same episodes for every method of a seed.
    return episode_dataset(x, y, N_WAY, n_shot, TEST_QUERIES, meta_batch_size=TEST_META_BATCH,
                           num_episodes=count, seed=1000 + context.seed)


def _result(model_or_fn, context, n_shot, step_seconds):
    accuracy = evaluate_episodes(model_or_fn, _test_episodes(context, n_shot),
                                 QUICK_TEST_EPISODES if context.settings.quick else TEST_EPISODES)
    return base.RunResult(accuracy.mean, [], step_seconds,
                          {"ci95_pct": 100 * accuracy.confidence_interval})


def _fit(model, context, timer, *args, **kwargs):
    base.apply_runtime(model, context)
    kwargs.setdefault("steps_per_epoch", STEPS_PER_EPOCH)
    kwargs.setdefault("shuffle", False)  # datasets and pairs come shuffled
    model.fit(*args, epochs=context.epochs, verbose=0, callbacks=[timer], **kwargs)


def _pretrain(classifier):
    """Transfer: a classifier over the meta-train classes (Chen et al.'s pre-training)."""
    def train(encoder, context, timer):
        x, y = _split("train")
        classes, labels = np.unique(y, return_inverse=True)
        model = pretraining_classifier(encoder, len(classes), classifier)
        model.compile(optimizer=context.make_optimizer(),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        _fit(model, context, timer, base.digits_dataset(context, x, labels).repeat())

    return train


def _train_siamese(encoder, context, timer):
    x, y = _split("train")
    model = SiameseNetwork(encoder)
    model.compile(optimizer=context.make_optimizer(), loss=ContrastiveLoss(margin=1.0))
    pairs, similar = contrastive_pairs(x, y, BATCH_SIZE * _steps(context), seed=context.seed)
    _fit(model, context, timer, pairs, similar, batch_size=BATCH_SIZE, steps_per_epoch=None)


def _train_triplet(encoder, context, timer):
    x, y = _split("train")
    model = keras.Sequential([encoder, keras.layers.UnitNormalization()])
    model.compile(optimizer=context.make_optimizer(), loss=TripletLoss(margin=0.5))
    # Batches of 16 classes x 4 images (Hermans et al.'s P x K batches).
    episodes = episode_dataset(x, y, 16, 4, 1, num_episodes=_steps(context), seed=context.seed)
    _fit(model, context, timer, episodes.map(lambda inputs, _: (inputs[0][0], inputs[1][0])))


_TRAINED = {}  # (method, seed, steps) -> (make what evaluate_episodes scores, step seconds)


def _trained_once(name, train):
    """A method trained once per seed and scored in both settings (1- and 5-shot).

    `train(context)` returns a function giving the model or function
    `evaluate_episodes` scores, and the median step seconds of training.
    """
    def variant(context, n_shot):
        key = (name, context.seed, _steps(context))
        if key not in _TRAINED:
            _TRAINED[key] = train(context)
        make_scored, step_seconds = _TRAINED[key]
        return _result(make_scored(), context, n_shot, step_seconds)

    return variant


def _shot_free(train, classify):
    """Training of the encoder alone: `train(encoder, context, timer)`; then
    `classify(encoder, context)` gives what is scored."""
    def run(context):
        encoder = _encoder(context)
        timer = base.StepTimer()
        train(encoder, context, timer)
        return (lambda: classify(encoder, context)), timer.median_step_seconds()

    return run


def _episodic(build, loss=None):
    """A model trained with `fit` on 5-way `TRAIN_SHOTS`-shot episodes (`loss=None`:
    the model's default)."""
    def run(context):
        x, y = _split("train")
        model = build(_encoder(context))
        model.compile(optimizer=context.make_optimizer(), loss=loss, metrics=["accuracy"])
        episodes = episode_dataset(x, y, N_WAY, TRAIN_SHOTS, TRAIN_QUERIES, META_BATCH,
                                   num_episodes=META_BATCH * _steps(context), seed=context.seed)
        timer = base.StepTimer()
        _fit(model, context, timer, episodes)
        return (lambda: model), timer.median_step_seconds()

    return run


def _transfer(classifier):
    return _shot_free(_pretrain(classifier),
                      lambda encoder, context: TransferBaseline(encoder, classifier=classifier,
                                                                seed=context.seed))


_METHODS = {
    "transfer_linear": _transfer("linear"),
    "transfer_cosine": _transfer("cosine"),
    "prototypical": _episodic(PrototypicalNetwork),
    "matching": _episodic(MatchingNetwork),
    "maml": _episodic(lambda encoder: MAML(keras.Sequential([encoder, keras.layers.Dense(N_WAY)]),
                                           inner_learning_rate=MAML_INNER_LEARNING_RATE),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "siamese": _shot_free(_train_siamese, lambda encoder, context: PrototypicalNetwork(encoder)),
    "triplet": _shot_free(_train_triplet, lambda encoder, context: PrototypicalNetwork(
        keras.Sequential([encoder, keras.layers.UnitNormalization()]))),
}
VARIANTS = {("transfer" if name == "transfer_linear" else name): _trained_once(name, train)
            for name, train in _METHODS.items()}


def _experiment(name, n_shot):
    def bind(variant):
        return lambda context: variant(context, n_shot)

    return base.Experiment(
        name=name,
        title=f"Few-shot classification, 5-way {n_shot}-shot on held-out rotated digits",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
        variants={variant: bind(function) for variant, function in VARIANTS.items()},
        baseline="transfer",
        epochs=4,
        ignored_settings={
            "trainer.batch_size": "episodes, pairs and triplet batches have their own sizes",
            "task.image_size": "the rotated digits are loaded at 8×8",
        },
    )


for _name, _shots in SHOTS.items():
    base.register_experiment(_experiment(_name, _shots))
