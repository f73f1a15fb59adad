"""KnowledgeDistillation, SubclassAuxiliaryLoss and SubclassHead against float64
references of the papers' formulas, the shared harness, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.distillation.knowledge_distillation import KnowledgeDistillation
from keras_efficient.distillation.subclass_auxiliary_loss import SubclassAuxiliaryLoss
from keras_efficient.distillation.subclass_auxiliary_loss import subclass_auxiliary_loss
from keras_efficient.distillation.subclass_head import SubclassHead

RNG = np.random.default_rng(7)
TEACHER = (3.0 * RNG.normal(size=(8, 5))).astype("float32")
STUDENT = (2.0 * RNG.normal(size=(8, 5))).astype("float32")
SUBCLASS_LOGITS = (2.0 * RNG.normal(size=(8, 6))).astype("float32")


# ------------------------------------------------------------- KnowledgeDistillation


@pytest.mark.parametrize("temperature", [1.0, 4.0, 10.0])
def test_knowledge_distillation__equals_float64_reference(temperature, ref):
    value = KnowledgeDistillation(temperature=temperature)(TEACHER, STUDENT)
    np.testing.assert_allclose(
        float(value), ref.knowledge_distillation(TEACHER, STUDENT, temperature), rtol=1e-5)


def test_knowledge_distillation__sample_weight_weights_examples(ref):
    weights = np.array([1, 0, 2, 0, 1, 1, 0, 3], "float32")
    value = KnowledgeDistillation(temperature=2.0)(TEACHER, STUDENT, sample_weight=weights)
    per_example = [ref.knowledge_distillation(TEACHER[i:i + 1], STUDENT[i:i + 1], 2.0)
                   for i in range(len(TEACHER))]
    np.testing.assert_allclose(float(value), np.sum(weights * per_example) / len(weights),
                               rtol=1e-5)


def test_knowledge_distillation__teacher_gets_no_gradient_student_gets_reference_gradient():
    temperature = 3.0
    _, (teacher_grad, student_grad) = testing.gradients(
        KnowledgeDistillation(temperature=temperature), TEACHER, STUDENT)
    assert not np.any(teacher_grad)
    # d/ds of T^2 CE(p_t, softmax(s / T)) averaged over n examples: T (q_s - p_t) / n.
    t, s = TEACHER.astype(np.float64), STUDENT.astype(np.float64)
    soft = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(
        z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    expected = temperature * (soft(s / temperature) - soft(t / temperature)) / len(t)
    np.testing.assert_allclose(student_grad, expected, atol=1e-6)


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_knowledge_distillation__harness(check, ref):
    testing.check_loss(
        KnowledgeDistillation, {"temperature": 4.0}, TEACHER, STUDENT, checks=[check],
        reference=lambda t, s: ref.knowledge_distillation(t, s, 4.0))


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_knowledge_distillation__non_positive_temperature_raises(temperature):
    with pytest.raises(ValueError, match="argument `temperature`.*> 0"):
        KnowledgeDistillation(temperature=temperature)


# ------------------------------------------------------------- SubclassAuxiliaryLoss


@pytest.mark.parametrize("temperature", [0.1, 1.0, 4.0])
def test_subclass_auxiliary_loss__equals_float64_reference(temperature, ref):
    value = SubclassAuxiliaryLoss(temperature=temperature)(None, SUBCLASS_LOGITS)
    np.testing.assert_allclose(
        float(value), ref.subclass_auxiliary_loss(SUBCLASS_LOGITS, temperature), atol=1e-5)


def test_subclass_auxiliary_loss__spread_examples_score_lower_than_collapsed(ref):
    collapsed = np.tile(SUBCLASS_LOGITS[:1], (8, 1))
    spread = 5.0 * np.eye(8, 6, dtype="float32")
    loss = SubclassAuxiliaryLoss()
    np.testing.assert_allclose(float(loss(None, collapsed)), 0.0, atol=1e-5)
    assert float(loss(None, spread)) < -0.5


@pytest.mark.tensorflow_only("tf.distribute replica contexts; on JAX the loss sees the "
                             "global batch (the on-two-devices test)")
def test_subclass_auxiliary_loss__two_replicas_equal_the_global_batch(ref):
    # The batch-level loss does not decompose per example: each replica must see
    # the other replica's logits. Value and gradient on two replicas vs one device.
    strategy = testing.two_replica_strategy()
    halves = np.split(SUBCLASS_LOGITS, 2)

    def step(logits):
        logits = tf.convert_to_tensor(logits)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            # The per-replica mean, summed over replicas by the global-batch weighting.
            loss = tf.reduce_mean(subclass_auxiliary_loss(logits, 0.5)) / 2.0
        return loss, tape.gradient(loss, logits)

    inputs = strategy.experimental_distribute_values_from_function(
        lambda context: halves[context.replica_id_in_sync_group])
    losses, grads = strategy.run(tf.function(step), args=(inputs,))
    total = sum(strategy.experimental_local_results(losses))
    replicated_grad = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads)])

    single = tf.convert_to_tensor(SUBCLASS_LOGITS)
    with tf.GradientTape() as tape:
        tape.watch(single)
        single_loss = tf.reduce_mean(subclass_auxiliary_loss(single, 0.5))
    np.testing.assert_allclose(float(total), ref.subclass_auxiliary_loss(SUBCLASS_LOGITS, 0.5),
                               atol=1e-5)
    np.testing.assert_allclose(float(total), float(single_loss), atol=1e-6)
    np.testing.assert_allclose(replicated_grad, tape.gradient(single_loss, single).numpy(),
                               atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's DataParallel layout")
def test_subclass_auxiliary_loss__batch_split_over_two_devices_equals_the_global_batch(ref):
    # JAX: the batch-level loss runs on the global batch laid out over two
    # devices (as under `DataParallel`), so every example meets every other.
    import jax

    def loss(logits):
        return keras.ops.mean(subclass_auxiliary_loss(logits, 0.5))

    value, gradient = testing.on_two_devices(jax.value_and_grad(loss), SUBCLASS_LOGITS)
    _, (expected_gradient,) = testing.gradients(loss, SUBCLASS_LOGITS)
    np.testing.assert_allclose(value, ref.subclass_auxiliary_loss(SUBCLASS_LOGITS, 0.5),
                               atol=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, atol=1e-6)
    halves = np.mean([ref.subclass_auxiliary_loss(h, 0.5) for h in np.split(SUBCLASS_LOGITS, 2)])
    assert abs(halves - float(value)) > 1e-3


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_subclass_auxiliary_loss__harness(check, ref):
    unused_labels = np.zeros((8,), "float32")
    testing.check_loss(
        SubclassAuxiliaryLoss, {"temperature": 0.5}, unused_labels, SUBCLASS_LOGITS,
        checks=[check], reference=lambda _, z: ref.subclass_auxiliary_loss(z, 0.5))


def test_subclass_auxiliary_loss__non_positive_temperature_raises():
    with pytest.raises(ValueError, match="argument `temperature`.*> 0"):
        SubclassAuxiliaryLoss(temperature=0.0)


# ---------------------------------------------------------------------- SubclassHead


def test_subclass_head__class_probabilities_equal_sums_of_subclass_probabilities(ref):
    head = SubclassHead(num_classes=3, num_subclasses=12)
    features = RNG.normal(size=(8, 5)).astype("float32")
    subclass_logits = head(features)
    class_probabilities = keras.ops.softmax(head.class_logits(subclass_logits))
    summed = ref.softmax(np.asarray(subclass_logits, np.float64)).reshape(8, 3, 4).sum(-1)
    np.testing.assert_allclose(np.asarray(class_probabilities), summed, atol=1e-6)
    # Subclasses are contiguous per class, as in the paper's implementation.
    np.testing.assert_allclose(np.asarray(head.class_logits(subclass_logits)),
                               ref.class_logits(subclass_logits, 3), atol=1e-5)


def test_subclass_head__logits_are_the_dense_projection():
    head = SubclassHead(num_classes=2, num_subclasses=6)
    features = RNG.normal(size=(4, 5)).astype("float32")
    head.build(features.shape)
    kernel, bias = (np.asarray(w, np.float64) for w in head.get_weights())
    np.testing.assert_allclose(np.asarray(head(features)), features @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_subclass_head__harness(check):
    features = RNG.normal(size=(8, 5)).astype("float32")
    testing.check_layer(SubclassHead, {"num_classes": 2, "num_subclasses": 10}, features,
                        checks=[check])


@pytest.mark.parametrize("num_classes, num_subclasses", [(2, 7), (3, 10), (4, 2)])
def test_subclass_head__subclasses_not_a_multiple_of_classes_raises(num_classes, num_subclasses):
    with pytest.raises(ValueError, match="argument `num_subclasses`"):
        SubclassHead(num_classes=num_classes, num_subclasses=num_subclasses)


def test_subclass_head__non_integer_classes_raises():
    with pytest.raises(TypeError, match="argument `num_classes`"):
        SubclassHead(num_classes=2.0, num_subclasses=10)
