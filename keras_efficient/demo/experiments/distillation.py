"""Subclass distillation vs conventional distillation vs a student from scratch.

The digits grouped into two superclasses (0-4 and 5-9), the setting of the
paper's MNIST colab: with two classes a teacher's soft class labels carry
little information, so the subclass teacher invents 5 subclasses per class and
the student learns those. A CNN teacher (`SubclassTeacher` over the shared
digits CNN) is trained once per seed and shared by the distillation variants;
the students are a ~30x smaller MLP.
"""

import dataclasses

import keras
import numpy as np

from keras_efficient.data import group_classes
from keras_efficient.demo import base
from keras_efficient.distillation.distiller import Distiller
from keras_efficient.distillation.subclass_distiller import SubclassDistiller
from keras_efficient.distillation.subclass_head import class_logits_from_subclass_logits
from keras_efficient.distillation.subclass_teacher import SubclassTeacher

SUPERCLASSES = ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
NUM_CLASSES, NUM_SUBCLASSES = 2, 10
STUDENT_WIDTH = 16
# One temperature and weight for both distillations, so only the targets differ.
ALPHA, TEMPERATURE = 0.5, 4.0
# The `--full` study's candidates (temperature, alpha), chosen on validation.
STUDY_CANDIDATES = ((4.0, 0.5), (2.0, 0.1), (2.0, 0.9), (8.0, 0.1), (8.0, 0.9))
# The teacher's auxiliary-loss weight and temperature, and the dropout before its
# head (the paper's teacher has one). Measured on these digits: without the
# auxiliary loss each class collapses into one subclass (entropy ~0.001 log s);
# beta=1 keeps the usage even but holds the teacher near 92% in 20 epochs.
TEACHER_BETA, TEACHER_TEMPERATURE, TEACHER_DROPOUT = 0.5, 1.0, 0.3

_TEACHERS = {}  # _teacher_key(context) -> trained SubclassTeacher


def _teacher_key(context):
    settings = context.settings
    return (context.seed, context.epochs, settings.batch_size, settings.optimizer,
            settings.learning_rate)


def _grouped(context):
    """The context with superclass labels (0-4 -> 0, 5-9 -> 1)."""
    data = context.data
    grouped = dataclasses.replace(
        data,
        y_train=group_classes(data.y_train, SUPERCLASSES),
        y_val=group_classes(data.y_val, SUPERCLASSES),
        # No test split in a selection run (`base.choose_on_validation`).
        y_test=None if data.y_test is None else group_classes(data.y_test, SUPERCLASSES),
        num_classes=NUM_CLASSES,
    )
    return dataclasses.replace(context, data=grouped)


def _student_network(context):
    return keras.Sequential(
        [keras.Input(context.data.x_train.shape[1:]), keras.layers.Flatten(),
         keras.layers.Dense(STUDENT_WIDTH, activation="relu")],
        name="student_mlp",
    )


def _student_classifier(context):
    network = _student_network(context)
    return keras.Sequential([network, keras.layers.Dense(NUM_CLASSES)], name="student")


def _train_teacher(context):
    """Train the subclass teacher (the digits CNN up to its last hidden layer)."""
    cnn = base.digits_cnn(context, num_classes=NUM_SUBCLASSES)
    backbone = keras.Sequential(cnn.layers[:-1] + [keras.layers.Dropout(TEACHER_DROPOUT)],
                                name="teacher_cnn")
    teacher = SubclassTeacher(backbone, NUM_CLASSES, NUM_SUBCLASSES, beta=TEACHER_BETA,
                              temperature=TEACHER_TEMPERATURE)
    teacher.compile(optimizer=context.make_optimizer(), metrics=["accuracy"])
    result = base.train_classifier(teacher, context)
    _TEACHERS[_teacher_key(context)] = teacher
    return teacher, result


def _cached_teacher(context):
    if _teacher_key(context) not in _TEACHERS:
        _train_teacher(context)
    return _TEACHERS[_teacher_key(context)]


def subclass_usage_entropy(teacher, x, y):
    """Per class: entropy (nats) of the mean assignment over that class's subclasses.

    `log(s)` when a class's examples spread evenly over its `s` subclasses, 0 when
    they all use one.
    """
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(teacher(x, training=False)))
    per_class = probabilities.reshape(len(x), NUM_CLASSES, -1)
    entropies = []
    for label in range(NUM_CLASSES):
        within = per_class[y == label, label]
        usage = (within / within.sum(axis=1, keepdims=True)).mean(axis=0)
        entropies.append(float(-np.sum(usage * np.log(usage + 1e-12))))
    return np.array(entropies)


def _scratch(context):
    return _train_student(_grouped(context))


def _student_on_teacher_labels(context):
    """The student trained from scratch on the teacher's predicted classes: what a
    student of this size reaches from the teacher's hard labels."""
    context = _grouped(context)
    data = context.data
    teacher = _cached_teacher(context)
    logits = class_logits_from_subclass_logits(teacher(data.x_train, training=False),
                                               NUM_CLASSES)
    labels = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1).astype("int32")
    result = _train_student(dataclasses.replace(
        context, data=dataclasses.replace(data, y_train=labels)))
    result.extra["teacher_label_agreement"] = float(np.mean(labels == data.y_train))
    return result


def _train_student(context):
    student = _student_classifier(context)
    student.compile(optimizer=context.make_optimizer(),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    result = base.train_classifier(student, context)
    result.extra["student_parameters"] = student.count_params()
    return result


def _teacher(context):
    context = _grouped(context)
    teacher, result = _train_teacher(context)
    data = context.data
    entropies = subclass_usage_entropy(teacher, data.x_train, data.y_train)
    subclasses_per_class = NUM_SUBCLASSES // NUM_CLASSES
    result.extra.update({
        "teacher_parameters": teacher.count_params(),
        "subclass_entropy_min": float(entropies.min()),
        "subclass_entropy_over_log_s": float(entropies.min() / np.log(subclasses_per_class)),
    })
    return result


def _distillation(context, temperature=TEMPERATURE, alpha=ALPHA):
    context = _grouped(context)
    teacher = _cached_teacher(context)
    # Conventional distillation sees only the teacher's two class logits.
    inputs = keras.Input(context.data.x_train.shape[1:])
    class_teacher = keras.Model(
        inputs, class_logits_from_subclass_logits(teacher(inputs), NUM_CLASSES))
    distiller = Distiller(class_teacher, _student_classifier(context),
                          temperature=temperature, alpha=alpha)
    distiller.compile(optimizer=context.make_optimizer(),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    return base.train_classifier(distiller, context)


def _subclass_distillation(context, temperature=TEMPERATURE, alpha=ALPHA):
    context = _grouped(context)
    teacher = _cached_teacher(context)
    student = SubclassTeacher(_student_network(context), NUM_CLASSES, NUM_SUBCLASSES)
    distiller = SubclassDistiller(teacher, student, alpha=alpha, temperature=temperature)
    distiller.compile(optimizer=context.make_optimizer(), metrics=["accuracy"])
    result = base.train_classifier(distiller, context)
    result.extra["student_parameters"] = student.count_params()
    return result


base.register_experiment(
    base.Experiment(
        name="distillation",
        title="Subclass distillation vs distillation vs a student from scratch "
              "(digits 0-4 vs 5-9)",
        description=(
            "Two superclasses of the digits (0-4, 5-9). `teacher`: the digits CNN with a "
            f"{NUM_SUBCLASSES}-subclass head (dropout {TEACHER_DROPOUT} before it) trained "
            f"on crossentropy + {TEACHER_BETA} x auxiliary loss (T={TEACHER_TEMPERATURE}), "
            "once per seed and shared; `subclass_entropy_over_log_s` is the "
            "smallest over the two classes of the entropy of the mean subclass assignment "
            "divided by log(5) (1 = even use). Students: a Flatten-Dense(16) MLP, ~30x "
            "fewer parameters, trained from scratch (baseline), by distillation of the "
            f"teacher's class logits, and by subclass distillation (both alpha={ALPHA}, "
            f"T={TEMPERATURE}). Step times of the distillation variants include the "
            "teacher's forward pass."
        ),
        variants={
            "student_from_scratch": _scratch,
            "teacher": _teacher,
            "distillation": _distillation,
            "subclass_distillation": _subclass_distillation,
        },
        baseline="student_from_scratch",
        epochs=20,
        claim=base.Claim(
            text="a subclass-distilled student beats the same student trained from scratch "
                 "on a two-class task (Muller et al. 2020: MNIST 2x5, 99.01% vs 98.53%)",
            variant="subclass_distillation",
            why_held="the teacher's subclass logits carry more than its two class logits",
            why_not="the distillers match a float64 numpy student step for step "
                    "(tests/distillation/test_distillation_reference_training.py), so this is "
                    "the setting, not the code: the card's diagnosis lists what was checked",
        ),
    )
)


def _tuned(distill):
    """`distill` with (temperature, alpha) chosen on validation (seed 0's runs)."""

    def run(context):
        def build(candidate):
            return lambda selection: distill(selection, *candidate)

        temperature, alpha = base.chosen_once(context, f"{distill.__name__}_t_alpha",
                                              STUDY_CANDIDATES, build)
        result = build((temperature, alpha))(context)
        result.extra.update({"temperature": temperature, "alpha": alpha})
        return result

    return run


base.register_experiment(
    base.Experiment(
        name="distillation_tuned",
        title="Distillation and subclass distillation with T and alpha chosen on validation "
              "(study)",
        description=(
            "As `distillation`, with each distiller's (temperature, alpha) chosen among "
            f"{STUDY_CANDIDATES} by the validation accuracy of seed 0's runs (the test "
            "split withheld); `temperature`, `alpha` = the choice. "
            "student_on_teacher_labels: the student from scratch on the teacher's "
            "predicted classes (teacher_label_agreement = their share equal to the labels)."
        ),
        variants={"student_from_scratch": _scratch,
                  "student_on_teacher_labels": _student_on_teacher_labels,
                  "distillation": _tuned(_distillation),
                  "subclass_distillation": _tuned(_subclass_distillation)},
        baseline="student_from_scratch",
        epochs=20,
        full_only=True,
        claim=base.Claim(
            text="a subclass-distilled student beats the same student from scratch once "
                 "its temperature and alpha are tuned (Muller et al. 2020)",
            variant="subclass_distillation",
            why_held="the tuned distillation transfers the teacher's subclass structure",
            why_not="validation picked a small distillation weight, so the teacher's targets "
                    "did not help this 16-unit student within 20 epochs (the card)",
        ),
    )
)
