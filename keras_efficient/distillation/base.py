"""What the distillation models share: the
student's regularization losses, sub-loss trackers, and the subclass models'
class-level outputs."""

import keras
from keras import ops

from keras_efficient.backend import keras_compat
from keras_efficient.distillation.subclass_head import class_logits_from_subclass_logits
from keras_efficient.utils import RestoresCompile

# Stateless, so one instance serves every model; a `Loss` object (not the bare
# function) so sample weights and the 1 / replicas scaling are Keras's own.
_CLASS_CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def validate_model(name, model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid type received for argument `{name}`. Expected a `keras.Model`. "
            f"Received: {name}={model!r} of type {type(model).__name__}"
        )
    return model


def output_size(model):
    """The last dimension of a functional model's (first) output, None if unknown."""
    outputs = getattr(model, "outputs", None)
    return outputs[0].shape[-1] if outputs else None


def regularization_loss(model):
    """The sum of `model.losses` (kernel regularizers, `add_loss`), scaled as Keras does."""
    return sum((keras_compat.additional_loss(model, loss) for loss in model.losses), 0.0)


def track(tracker, loss):
    """Update a `Mean` tracker with `loss`, undoing Keras's 1 / replicas scaling."""
    tracker.update_state(keras_compat.unscale_loss_for_distribution(loss))


class SubclassOutputs(RestoresCompile):
    """Mixin for models whose `call` returns subclass logits (teacher, subclass student).

    Training needs the subclass logits, so they are what `call` returns; the
    compiled metrics and `predict` see the class probabilities (the sums of the
    subclass probabilities). The supervised term is the crossentropy of the
    integer labels and the class logits, built in: `compile` takes no `loss`.
    Needs a `num_classes` attribute.
    """

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if loss is not None:
            raise ValueError(
                f"Invalid value received for argument `loss`. {type(self).__name__} "
                "computes its crossentropy on the class logits itself; expected "
                f"loss=None. Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, **kwargs)

    def class_crossentropy(self, y, subclass_logits, sample_weight=None):
        """Crossentropy of integer labels `y` and the class logits (scaled as Keras does)."""
        return _CLASS_CROSSENTROPY(
            y, class_logits_from_subclass_logits(subclass_logits, self.num_classes), sample_weight
        )

    def class_probabilities(self, subclass_logits):
        """Class probabilities `(batch_size, num_classes)` of subclass logits."""
        return ops.softmax(class_logits_from_subclass_logits(subclass_logits, self.num_classes))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, self.class_probabilities(y_pred), sample_weight)

    def predict_step(self, *args):
        # TensorFlow's trainer passes `data`; JAX's passes `(state, data)` and
        # takes the outputs with the new non-trainable state.
        outputs = super().predict_step(*args)
        if keras.backend.backend() == "jax":
            subclass_logits, non_trainable_variables = outputs
            return self.class_probabilities(subclass_logits), non_trainable_variables
        return self.class_probabilities(outputs)
