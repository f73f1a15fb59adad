"""keras-io's example calls (knowledge distillation, SimSiam/SimCLR two-view input)
and Keras-style array-likes, run on ours; numbers against float64 references."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke
from keras_efficient import testing
from keras_efficient.models import Distiller

RNG = np.random.default_rng(7)
X = RNG.normal(size=(8, 6)).astype("float32")
Y = np.array([0, 1, 2, 0, 1, 2, 1, 0], "int32")


def _mlp(outputs, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(outputs)])


def _keras_io_distiller(alpha=0.1, temperature=10):
    distiller = Distiller(student=_mlp(3, seed=2), teacher=_mlp(3, seed=1))
    distiller.compile(
        optimizer=keras.optimizers.Adam(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
        student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        distillation_loss_fn=keras.losses.KLDivergence(),
        alpha=alpha,
        temperature=temperature,
    )
    return distiller


def _softmax64(logits):
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _keras_io_loss64(teacher_logits, student_logits, y, alpha, temperature):
    """keras-io: alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))."""
    student = -np.mean(np.log(_softmax64(student_logits)[np.arange(len(y)), y]))
    p, q = _softmax64(teacher_logits / temperature), _softmax64(student_logits / temperature)
    kl = np.mean(np.sum(p * np.log(p / q), axis=1))
    return alpha * student + (1 - alpha) * temperature**2 * kl


@pytest.mark.parametrize("alpha, temperature", [(0.1, 10.0), (0.7, 2.0)])
def test_distiller__keras_io_compile_matches_its_float64_formula(alpha, temperature):
    distiller = _keras_io_distiller(alpha, temperature)
    logs = distiller.evaluate(X, Y, batch_size=len(X), verbose=0, return_dict=True)
    teacher = distiller.teacher(X, training=False)
    student = distiller.student(X, training=False)
    expected = _keras_io_loss64(teacher, student, Y, alpha, temperature)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)
    assert "sparse_categorical_accuracy" in logs


def test_distiller__keras_io_fit_trains_the_student_and_reloads(tmp_path):
    distiller = _keras_io_distiller()
    before = [w.copy() for w in distiller.student.get_weights()]
    distiller.fit(X, Y, epochs=2, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, distiller.student.get_weights()))
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)
    expected = distiller.evaluate(X, Y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(restored.evaluate(X, Y, verbose=0, return_dict=True)["loss"],
                               expected, rtol=1e-5)


@pytest.mark.parametrize("constructor, compile_kwargs, message", [
    ({"alpha": 0.9}, {"student_loss_fn": "mse", "distillation_loss_fn": "kld"},
     "leave them out of the constructor"),
    ({"temperature": 4.0}, {"student_loss_fn": "mse", "distillation_loss_fn": "kld",
                            "temperature": 2.0}, "argument `temperature`"),
    ({}, {"alpha": 0.1, "loss": "mse"}, "argument `loss`"),
    ({}, {"alpha": 0.1}, "weights the distillation term"),
    ({}, {"student_loss_fn": "mse"}, "argument `distillation_loss_fn`"),
])
def test_distiller__mixed_constructor_and_keras_io_forms_rejected(constructor, compile_kwargs,
                                                                  message):
    distiller = Distiller(_mlp(3, seed=1), _mlp(3, seed=2), **constructor)
    with pytest.raises(ValueError, match=message):
        distiller.compile(optimizer="adam", **compile_kwargs)


def test_distiller__keras_io_alpha_weights_the_student_term():
    # keras-io's alpha=0.1 is ours alpha=0.9 (ours weights the distillation term).
    ours = Distiller(_mlp(3, seed=1), _mlp(3, seed=2), temperature=3.0, alpha=0.9)
    ours.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    keras_io = _keras_io_distiller(alpha=0.1, temperature=3.0)
    teacher = ours.teacher(X, training=False)
    student = ours.student(X, training=False)
    # Ours uses the crossentropy (KL plus the teacher's entropy, a constant).
    p = _softmax64(np.asarray(teacher) / 3.0)
    entropy = -np.mean(np.sum(p * np.log(p), axis=1))
    loss_ours = ours.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)["loss"]
    loss_io = keras_io.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss_ours - 0.9 * 9.0 * entropy, loss_io, rtol=1e-4)
    np.testing.assert_allclose(loss_io, _keras_io_loss64(teacher, student, Y, 0.1, 3.0),
                               rtol=1e-4)


# ------------------------------------------------------------- SSL: keras-io's two views

def _simclr():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8)])
    model = ke.models.SimCLR(encoder, ke.layers.ProjectionHead((8,), 4, batch_norm=False),
                             ke.layers.SimCLRAugmentation.from_preset("digits", seed=1))
    model.compile(optimizer="adam")
    return model


def test_simclr__keras_io_zipped_views_are_two_views_not_a_label():
    views_1 = RNG.uniform(size=(8, 8, 8, 1)).astype("float32")
    views_2 = RNG.uniform(size=(8, 8, 8, 1)).astype("float32")
    dataset = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(views_1),
                                   tf.data.Dataset.from_tensor_slices(views_2))).batch(8)
    model = _simclr()
    logs = model.evaluate(dataset, verbose=0, return_dict=True)
    # Not re-augmented: the loss of the given views, through encoder and head.
    z_1 = model.projection_head(model.encoder(views_1))
    z_2 = model.projection_head(model.encoder(views_2))
    np.testing.assert_allclose(logs["loss"], float(ke.losses.NTXent(0.5)(z_1, z_2)), rtol=1e-5)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_simclr__views_of_different_shapes_get_a_clear_error():
    model = _simclr()
    pair = (np.zeros((4, 8, 8, 1), "float32"), np.zeros((4, 6, 6, 1), "float32"))
    with pytest.raises(ValueError, match="tuple of two image batches of the same shape"):
        model.fit(tf.data.Dataset.from_tensors((pair,)), verbose=0, shuffle=False)


def test_simclr_augmentation__warns_on_images_outside_its_value_range():
    augment = ke.layers.SimCLRAugmentation.from_preset("digits", seed=1)
    pixels = np.full((2, 8, 8, 1), 200.0, "float32")
    with pytest.warns(UserWarning, match="value_range=\\(0, 255\\)"):
        augment(pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        augment(np.full((2, 8, 8, 1), 0.5, "float32"))
        ke.layers.SimCLRAugmentation.from_preset("digits", value_range=(0, 255))(
            np.full((2, 8, 8, 1), 200.0, "float32"))


def test_simclr_augmentation__warns_inside_a_tf_data_map():
    augment = ke.layers.SimCLRAugmentation.from_preset("digits", seed=1)
    pixels = np.full((2, 8, 8, 1), 200.0, "float32")
    with pytest.warns(UserWarning, match=r"outside its value_range=\(0(\.0)?, 1(\.0)?\)"):
        list(tf.data.Dataset.from_tensors(pixels).map(augment.two_views))


# ------------------------------------------------------- losses take array-likes

def _cosine64(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


Z_1 = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
Z_2 = [[3.0, 2.0, 1.0], [1.0, 1.0, -1.0]]


def test_simsiam_loss__python_lists_match_float64_reference():
    np.testing.assert_allclose(float(ke.losses.SimSiamLoss()(Z_1, Z_2)),
                               -np.mean(_cosine64(Z_1, Z_2)), rtol=1e-6)


def test_byol_loss__python_lists_match_float64_reference():
    np.testing.assert_allclose(float(ke.losses.BYOLLoss()(Z_1, Z_2)),
                               np.mean(2 - 2 * _cosine64(Z_1, Z_2)), rtol=1e-6)


def test_sparse_categorical_crossentropy__python_lists_match_keras():
    y_true, y_pred = [0, 2], [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]
    np.testing.assert_allclose(
        float(ke.losses.SparseCategoricalCrossentropy()(y_true, y_pred)),
        -np.mean(np.log([0.7, 0.6])), rtol=1e-6)


# The constructor form's harness covers `jit`; the keras-io form differs in the losses.
@pytest.mark.parametrize("check", ["config", "saving", "bfloat16", "replicas"])
def test_distiller__keras_io_form_harness(check):
    testing.check_model(
        lambda: Distiller(student=_mlp(3, seed=2), teacher=_mlp(3, seed=1)),
        lambda: {"optimizer": keras.optimizers.SGD(0.1), "metrics": ["accuracy"],
                 "student_loss_fn": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 "distillation_loss_fn": keras.losses.KLDivergence(),
                 "alpha": 0.3, "temperature": 2.0},
        X, Y, checks=[check])


def test_simsiam__keras_io_encoder_and_predictor_by_keyword():
    # keras-io: SimSiam(encoder, predictor), the encoder ending in the projector.
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8)])
    predictor = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4),
                                  keras.layers.Dense(8)])
    model = ke.models.SimSiam(encoder, projection_head=keras.layers.Identity(),
                              predictor=predictor)
    model.compile(optimizer="sgd")
    views = RNG.uniform(size=(2, 4, 8, 8, 1)).astype("float32")
    logs = model.evaluate(tf.data.Dataset.from_tensors((views[0], views[1])), verbose=0,
                          return_dict=True)
    z_1, z_2 = encoder(views[0]), encoder(views[1])
    p_1, p_2 = predictor(z_1), predictor(z_2)
    expected = -0.5 * (np.mean(_cosine64(p_1, z_2)) + np.mean(_cosine64(p_2, z_1)))
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
