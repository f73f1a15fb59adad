"""`Annealing` against its closed forms, and the losses and models that take it as
their temperature: the value at step s equals the float temperature scheduled for s."""

import math

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.distillation.distiller import Distiller
from keras_efficient.distillation.knowledge_distillation import KnowledgeDistillation
from keras_efficient.distillation.subclass_auxiliary_loss import SubclassAuxiliaryLoss
from keras_efficient.distillation.subclass_teacher import SubclassTeacher
from keras_efficient.schedules.annealing import Annealing
from keras_efficient.ssl.nt_xent import NTXent
from keras_efficient.ssl.simclr import SimCLR

STEPS = [0, 1, 25, 50, 99, 100, 1000]
RNG = np.random.default_rng(5)
X = RNG.normal(size=(8, 6)).astype("float32")
Y = np.array([0, 1, 2, 0, 1, 2, 1, 0], "int32")


def _closed_form(mode, initial, final, steps):
    def value(step):
        p = min(step / steps, 1.0)
        return {"constant": initial,
                "linear": initial + (final - initial) * p,
                "cosine": final + (initial - final) * 0.5 * (1 + math.cos(math.pi * p)),
                "exponential": initial * (final / initial) ** p}[mode]
    return value


@pytest.mark.parametrize("mode", ["constant", "linear", "cosine", "exponential"])
def test_annealing__equals_closed_form(mode):
    testing.check_schedule(Annealing, {"initial_value": 8.0, "final_value": 0.5,
                                       "annealing_steps": 100, "mode": mode},
                           STEPS, reference=_closed_form(mode, 8.0, 0.5, 100), checks=[],
                           rtol=1e-6)


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_annealing__harness(check):
    testing.check_schedule(Annealing, {"initial_value": 0.05, "final_value": 0.01,
                                       "annealing_steps": 3, "mode": "cosine"},
                           [0, 1, 2, 3, 4], reference=_closed_form("cosine", 0.05, 0.01, 3),
                           checks=[check], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"initial_value": 0.0}, "initial_value"),
    ({"final_value": -1.0}, "final_value"),
    ({"annealing_steps": 0}, "annealing_steps"),
    ({"annealing_steps": 2.5}, "annealing_steps"),
    ({"mode": "step"}, "mode"),
])
def test_annealing__rejects_bad_arguments(kwargs, match):
    arguments = {"initial_value": 1.0, "final_value": 0.1, "annealing_steps": 10, **kwargs}
    with pytest.raises((ValueError, TypeError), match=f"argument `{match}`"):
        Annealing(**arguments)


def _schedule():
    return Annealing(2.0, 0.25, annealing_steps=10, mode="exponential")


@pytest.mark.parametrize("loss_class, args", [
    (NTXent, lambda: (X, X[::-1] + 0.1 * RNG.normal(size=X.shape).astype("float32"))),
    (KnowledgeDistillation, lambda: (X, X[:, ::-1])),
    (SubclassAuxiliaryLoss, lambda: (None, X)),
])
def test_scheduled_losses__value_at_step_equals_float_temperature(loss_class, args):
    y_true, y_pred = args()
    scheduled = loss_class(temperature=_schedule())
    step = keras.Variable(0, dtype="int32", trainable=False)
    scheduled.step = step
    for s in (0, 3, 10, 20):
        step.assign(s)
        fixed = loss_class(temperature=float(_closed_form("exponential", 2.0, 0.25, 10)(s)))
        np.testing.assert_allclose(float(scheduled(y_true, y_pred)),
                                   float(fixed(y_true, y_pred)), rtol=1e-5)
    clone = loss_class.from_config(scheduled.get_config())
    assert isinstance(clone.temperature, Annealing)
    assert clone.temperature.get_config() == scheduled.temperature.get_config()


def test_scheduled_losses__without_a_step_raise_a_clear_error():
    with pytest.raises(ValueError, match="temperature schedule but no step"):
        NTXent(temperature=_schedule())(X, X)


def test_simclr__nt_xent_temperature_follows_its_step_counter():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
    model = SimCLR(encoder, keras.Sequential([keras.layers.Dense(4)]), temperature=_schedule())
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # the weights stay put
    views = {"view_a": X, "view_b": X[::-1].copy()}
    model.fit(views, batch_size=len(X), epochs=3, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.steps_trained)) == 3
    loss = model.evaluate(views, batch_size=len(X), verbose=0, return_dict=True)["loss"]
    z_a, z_b = (model.projection_head(encoder(view)) for view in views.values())
    temperature = _closed_form("exponential", 2.0, 0.25, 10)(3)
    np.testing.assert_allclose(loss, float(NTXent(temperature)(z_a, z_b)), rtol=1e-5)
    restored = SimCLR.from_config(model.get_config())
    assert restored.contrastive_loss.step is restored.steps_trained


def test_subclass_teacher__auxiliary_temperature_follows_its_step_counter():
    backbone = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    teacher = SubclassTeacher(backbone, num_classes=3, num_subclasses=6, temperature=_schedule())
    teacher.compile(optimizer=keras.optimizers.SGD(0.0))
    teacher.fit(X, Y, batch_size=len(X), epochs=2, verbose=0)
    logs = teacher.evaluate(X, Y, batch_size=len(X), verbose=0, return_dict=True)
    fixed = SubclassAuxiliaryLoss(_closed_form("exponential", 2.0, 0.25, 10)(2))
    np.testing.assert_allclose(logs["auxiliary_loss"], float(fixed(None, teacher(X))), rtol=1e-5)


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_distiller__harness_with_annealed_temperature(check):
    def make():
        teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        return Distiller(teacher, student, temperature=Annealing(4.0, 1.0, 2, "cosine"), alpha=0.5)

    def compile_kwargs():
        return {"optimizer": keras.optimizers.SGD(0.1),
                "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    testing.check_model(make, compile_kwargs, X, Y, checks=[check])


def test_distiller__annealed_temperature_advances_on_the_backend():
    # On JAX, `compute_loss` cannot read `optimizer.iterations`: the model's counter.
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    distiller = Distiller(teacher, student, temperature=_schedule(), alpha=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True)
    history = distiller.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    assert int(keras.ops.convert_to_numpy(distiller.steps_trained)) == 4
    teacher_logits, student_logits = teacher(X), student(X)
    expected = []
    for epoch in range(2):  # the epoch's mean over its two steps
        values = []
        for batch, step in ((slice(0, 4), 2 * epoch), (slice(4, 8), 2 * epoch + 1)):
            t = _closed_form("exponential", 2.0, 0.25, 10)(step)
            values.append(float(KnowledgeDistillation(t)(teacher_logits[batch],
                                                         student_logits[batch])))
        expected.append(np.mean(values))
    np.testing.assert_allclose(history["distillation_loss"], expected, rtol=1e-5)
