"""Distiller, SubclassTeacher and SubclassDistiller: their losses against float64
references, what is frozen and reported, the shared harness, and bad input."""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.distillation.distiller import Distiller
from keras_efficient.distillation.subclass_distiller import SubclassDistiller
from keras_efficient.distillation.subclass_head import SubclassHead
from keras_efficient.distillation.subclass_teacher import SubclassTeacher
from keras_efficient.schedules import Annealing

RNG = np.random.default_rng(3)
X = RNG.normal(size=(8, 6)).astype("float32")
Y = np.array([0, 1, 2, 0, 1, 2, 1, 0], "int32")
Y_BINARY = Y % 2


def _mlp(width, outputs=None, dropout=0.0, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((6,)), keras.layers.Dense(width, activation="tanh")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    if outputs:
        layers.append(keras.layers.Dense(outputs))
    return keras.Sequential(layers)


def _logits(model):
    return np.asarray(model(X, training=False), np.float64)


def _evaluate(model, y):
    return model.evaluate(X, y, batch_size=len(X), verbose=0, return_dict=True)


def _crossentropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# -------------------------------------------------------------------------- Distiller


def _distiller(**kwargs):
    return Distiller(_mlp(16, 3, seed=1), _mlp(4, 3, seed=2), **kwargs)


def _sgd(learning_rate=0.1):
    return keras.optimizers.SGD(learning_rate=learning_rate)


@pytest.mark.parametrize("alpha, temperature", [(0.9, 4.0), (0.3, 1.5), (1.0, 2.0), (0.0, 4.0)])
def test_distiller__loss_equals_weighted_float64_reference(alpha, temperature, ref):
    distiller = _distiller(alpha=alpha, temperature=temperature)
    distiller.compile(optimizer=_sgd(), loss=_crossentropy())
    logs = _evaluate(distiller, Y)
    teacher, student = _logits(distiller.teacher), _logits(distiller.student)
    kd = ref.knowledge_distillation(teacher, student, temperature)
    ce = ref.crossentropy(Y, student)
    np.testing.assert_allclose(logs["distillation_loss"], kd, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], alpha * kd + (1 - alpha) * ce, rtol=1e-5)
    if alpha < 1:
        np.testing.assert_allclose(logs["student_loss"], ce, rtol=1e-5)


def test_distiller__teacher_frozen_and_in_inference_mode_metrics_are_the_students(ref):
    # Dropout(0.9) in the teacher: in training mode its logits would be far from
    # the inference ones the reference uses. A zero learning rate keeps the
    # student fixed, so the step's reported numbers are exactly comparable.
    teacher = _mlp(16, 3, dropout=0.9, seed=1)
    distiller = Distiller(teacher, _mlp(4, 3, seed=2), temperature=2.0, alpha=0.5)
    distiller.compile(optimizer=_sgd(0.0), loss=_crossentropy(), metrics=["accuracy"])
    history = distiller.fit(X, Y, batch_size=len(X), epochs=1, verbose=0).history
    teacher_logits, student_logits = _logits(teacher), _logits(distiller.student)
    np.testing.assert_allclose(
        history["distillation_loss"][0],
        ref.knowledge_distillation(teacher_logits, student_logits, 2.0), rtol=1e-5)
    np.testing.assert_allclose(history["accuracy"][0],
                               np.mean(student_logits.argmax(-1) == Y), atol=1e-7)
    assert not teacher.trainable and not distiller.teacher.trainable_weights
    assert {id(w) for w in distiller.trainable_weights} == {
        id(w) for w in distiller.student.trainable_weights}

    before = [w.copy() for w in teacher.get_weights()]
    distiller.compile(optimizer=_sgd(0.5), loss=_crossentropy())
    distiller.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    for old, new in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_distiller__sub_losses_reported_unscaled_on_two_replicas(ref):
    # Keras divides each replica's loss by the replica count; the trackers undo it.
    with testing.two_replica_strategy().scope():
        distiller = _distiller(alpha=0.5, temperature=2.0)
        distiller.compile(optimizer=_sgd(0.0), loss=_crossentropy())
    history = distiller.fit(X, Y, batch_size=len(X), epochs=1, verbose=0).history
    teacher, student = _logits(distiller.teacher), _logits(distiller.student)
    kd, ce = ref.knowledge_distillation(teacher, student, 2.0), ref.crossentropy(Y, student)
    np.testing.assert_allclose(history["distillation_loss"][0], kd, rtol=1e-5)
    np.testing.assert_allclose(history["student_loss"][0], ce, rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], 0.5 * kd + 0.5 * ce, rtol=1e-5)


def test_distiller__annealed_temperature_follows_the_schedule(ref):
    # Read at run time on both backends: the compiled test step reads the model's
    # step counter, so one traced `evaluate` sees every step's temperature.
    schedule = Annealing(8.0, 2.0, annealing_steps=10, mode="cosine")
    distiller = _distiller(alpha=1.0, temperature=schedule)
    distiller.compile(optimizer=_sgd(0.0), loss=_crossentropy())
    teacher, student = _logits(distiller.teacher), _logits(distiller.student)

    def scheduled(step):  # the cosine annealing formula in float64
        return 2.0 + (8.0 - 2.0) * (1 + np.cos(np.pi * min(step, 10) / 10)) / 2

    for step in (0, 5, 10, 12):
        distiller.steps_trained.assign(step)  # the model counts its own steps
        np.testing.assert_allclose(
            _evaluate(distiller, Y)["distillation_loss"],
            ref.knowledge_distillation(teacher, student, scheduled(step)), rtol=1e-5)
    # Training advances the counter (learning rate 0: the student stays), and the
    # next evaluation reads the new step.
    distiller.steps_trained.assign(3)
    distiller.fit(X, Y, batch_size=len(X) // 2, epochs=1, verbose=0)
    assert int(distiller.steps_trained.numpy()) == 5
    np.testing.assert_allclose(
        _evaluate(distiller, Y)["distillation_loss"],
        ref.knowledge_distillation(teacher, student, scheduled(5)), rtol=1e-5)
    config = Distiller.from_config(distiller.get_config()).get_config()["temperature"]
    assert config == keras.optimizers.schedules.serialize(schedule)


def test_distiller__student_regularization_and_sample_weights_count(ref):
    keras.utils.set_random_seed(2)
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(
        3, kernel_regularizer=keras.regularizers.L2(0.1))])
    distiller = Distiller(_mlp(16, 3, seed=1), student, temperature=3.0, alpha=0.5)
    distiller.compile(optimizer=_sgd(), loss=_crossentropy())
    weights = np.array([1, 0, 2, 1, 0, 1, 3, 0], "float32")
    loss = distiller.compute_loss(X, Y, distiller(X), sample_weight=weights)
    teacher, student_logits = _logits(distiller.teacher), _logits(student)
    per_example = np.array([
        0.5 * ref.knowledge_distillation(teacher[i:i + 1], student_logits[i:i + 1], 3.0)
        + 0.5 * ref.crossentropy(Y[i:i + 1], student_logits[i:i + 1]) for i in range(len(X))])
    kernel = np.asarray(student.layers[-1].kernel, np.float64)
    expected = np.sum(weights * per_example) / len(X) + 0.1 * np.sum(kernel**2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_distiller__harness(check):
    testing.check_model(
        lambda: Distiller(_mlp(8, 3, seed=1), _mlp(4, 3, seed=2), temperature=3.0, alpha=0.7),
        lambda: {"optimizer": _sgd(), "loss": _crossentropy(), "metrics": ["accuracy"]},
        X, Y, checks=[check])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"alpha": 1.5}, ValueError, "argument `alpha`.*in \\[0, 1\\]"),
    ({"alpha": -0.1}, ValueError, "argument `alpha`"),
    ({"temperature": 0.0}, ValueError, "argument `temperature`.*> 0"),
    ({"temperature": -2}, ValueError, "argument `temperature`"),
    ({"temperature": "hot"}, TypeError, "argument `temperature`"),
])
def test_distiller__bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        _distiller(**kwargs)


def test_distiller__bad_models_raise():
    with pytest.raises(TypeError, match="argument `teacher`"):
        Distiller(keras.layers.Dense(3), _mlp(4, 3))
    with pytest.raises(ValueError, match="argument `student`.*size 3"):
        Distiller(_mlp(8, 3), _mlp(4, 5))
    with pytest.raises(ValueError, match="argument `loss`"):
        _distiller(alpha=0.5).compile(optimizer="sgd")


# ------------------------------------------------------------------ SubclassTeacher


def _teacher(width=16, num_classes=2, num_subclasses=6, seed=1, **kwargs):
    return SubclassTeacher(_mlp(width, seed=seed), num_classes, num_subclasses, **kwargs)


@pytest.mark.parametrize("beta, temperature", [(1.0, 1.0), (0.3, 0.5)])
def test_subclass_teacher__loss_equals_float64_reference(beta, temperature, ref):
    teacher = _teacher(beta=beta, temperature=temperature)
    teacher.compile(optimizer=_sgd())
    logs = _evaluate(teacher, Y_BINARY)
    subclass_logits = _logits(teacher)
    ce = ref.crossentropy(Y_BINARY, ref.class_logits(subclass_logits, 2))
    aux = ref.subclass_auxiliary_loss(subclass_logits, temperature)
    np.testing.assert_allclose(logs["cross_entropy"], ce, rtol=1e-5)
    np.testing.assert_allclose(logs["auxiliary_loss"], aux, atol=1e-5)
    np.testing.assert_allclose(logs["loss"], ce + beta * aux, atol=1e-5)


def test_subclass_teacher__predicts_class_probabilities_metrics_see_classes(ref):
    teacher = _teacher(num_classes=2, num_subclasses=10)
    teacher.compile(optimizer=_sgd(0.0), metrics=["accuracy"])
    history = teacher.fit(X, Y_BINARY, batch_size=len(X), epochs=1, verbose=0).history
    subclass_logits = _logits(teacher)
    summed = ref.softmax(subclass_logits).reshape(len(X), 2, 5).sum(-1)
    np.testing.assert_allclose(teacher.predict(X, verbose=0), summed, atol=1e-6)
    np.testing.assert_allclose(history["accuracy"][0],
                               np.mean(summed.argmax(-1) == Y_BINARY), atol=1e-7)


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_subclass_teacher__harness(check):
    testing.check_model(
        lambda: _teacher(width=8, beta=0.5, temperature=0.5),
        lambda: {"optimizer": _sgd(), "metrics": ["accuracy"]}, X, Y_BINARY, checks=[check])


def test_subclass_teacher__bad_input_raises():
    with pytest.raises(ValueError, match="argument `num_subclasses`.*multiple of num_classes=3"):
        _teacher(num_classes=3, num_subclasses=10)
    with pytest.raises(ValueError, match="argument `beta`"):
        _teacher(beta=-1.0)
    with pytest.raises(ValueError, match="argument `temperature`"):
        _teacher(temperature=0.0)
    with pytest.raises(ValueError, match="argument `loss`"):
        _teacher().compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="argument `backbone`"):
        SubclassTeacher(lambda x: x, 2, 6)


# ---------------------------------------------------------------- SubclassDistiller


def _subclass_distiller(student_subclasses=6, **kwargs):
    student = keras.Sequential([_mlp(4, seed=2), SubclassHead(2, student_subclasses)])
    return SubclassDistiller(_teacher(), student, **kwargs)


@pytest.mark.parametrize("alpha, temperature", [(0.5, 4.0), (0.8, 2.0), (0.0, 1.0)])
def test_subclass_distiller__loss_equals_float64_reference(alpha, temperature, ref):
    distiller = _subclass_distiller(alpha=alpha, temperature=temperature)
    distiller.compile(optimizer=_sgd(), metrics=["accuracy"])
    logs = _evaluate(distiller, Y_BINARY)
    teacher, student = _logits(distiller.teacher), _logits(distiller.student)
    kd = ref.knowledge_distillation(teacher, student, temperature)
    ce = ref.crossentropy(Y_BINARY, ref.class_logits(student, 2))
    np.testing.assert_allclose(logs["distillation_loss"], kd, rtol=1e-5)
    np.testing.assert_allclose(logs["student_loss"], ce, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], alpha * kd + (1 - alpha) * ce, rtol=1e-5)
    np.testing.assert_allclose(logs["accuracy"],
                               np.mean(ref.class_logits(student, 2).argmax(-1) == Y_BINARY))
    np.testing.assert_allclose(distiller.predict(X, verbose=0),
                               ref.softmax(student).reshape(8, 2, 3).sum(-1), atol=1e-6)


def test_subclass_distiller__subclass_teacher_as_student_and_frozen_teacher():
    distiller = SubclassDistiller(_teacher(), _teacher(width=4, seed=2), temperature=2.0)
    teacher_weights = [w.copy() for w in distiller.teacher.get_weights()]
    student_weights = [w.copy() for w in distiller.student.get_weights()]
    distiller.compile(optimizer=_sgd())
    distiller.fit(X, Y_BINARY, batch_size=4, epochs=2, verbose=0)
    for old, new in zip(teacher_weights, distiller.teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    # ... while the student did train.
    for old, new in zip(student_weights, distiller.student.get_weights()):
        assert not np.array_equal(old, new)
    np.testing.assert_allclose(distiller.student.predict(X, verbose=0),
                               distiller.predict(X, verbose=0), atol=1e-6)


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_subclass_distiller__harness(check):
    testing.check_model(
        lambda: SubclassDistiller(_teacher(width=8), _teacher(width=4, seed=2), alpha=0.5),
        lambda: {"optimizer": _sgd(), "metrics": ["accuracy"]}, X, Y_BINARY, checks=[check])


def test_subclass_distiller__bad_input_raises():
    with pytest.raises(ValueError, match="argument `student`.*Expected 6 subclass logits"):
        _subclass_distiller(student_subclasses=8)
    with pytest.raises(ValueError, match="argument `student`.*Expected 6"):
        SubclassDistiller(_teacher(), _teacher(num_subclasses=4, seed=2))
    with pytest.raises(TypeError, match="argument `teacher`.*SubclassTeacher"):
        SubclassDistiller(_mlp(8, 6), _mlp(4, 6))
    with pytest.raises(ValueError, match="argument `alpha`"):
        _subclass_distiller(alpha=2.0)
    with pytest.raises(ValueError, match="argument `temperature`"):
        _subclass_distiller(temperature=0.0)
    with pytest.raises(ValueError, match="argument `loss`"):
        _subclass_distiller().compile(optimizer="sgd", loss="mse")
