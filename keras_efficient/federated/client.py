"""The client update: local epochs of minibatch training from the global weights.

One `ClientUpdate` is built per process and reused for every client and round:
the Keras model and its compiled train step are created once, and a client's
state is swapped in as variable values. The same object runs inside Flower's
`ClientApp` (`keras_efficient.federated.flower`), so both paths execute one
algorithm.
"""

import math

import keras
import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


class _ProximalModel(keras.Model):
    """Trains `model`'s variables with FedProx's proximal term added to its loss.

    The term `mu / 2 * ||w - w_global||^2` (Li et al. 2020) keeps a client near
    the weights it started the round from; `anchors` hold those weights.
    """

    def __init__(self, model, mu):
        super().__init__(name=f"{model.name}_client")
        self.inner = model
        self.mu = mu
        self.anchors = [
            self.add_weight(shape=v.shape, dtype=v.dtype, initializer="zeros",
                            trainable=False, name=f"anchor_{i}")
            for i, v in enumerate(model.trainable_weights)
        ] if mu else []

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not self.mu:
            return loss
        distance = sum(
            keras.ops.sum(keras.ops.square(v - a))
            for v, a in zip(self.inner.trainable_weights, self.anchors)
        )
        return loss + 0.5 * self.mu * distance


def model_weights(model):
    """The weights a client and the server exchange: trainable, then non-trainable."""
    return model.trainable_weights + model.non_trainable_weights


def set_weights(model, values):
    """Assign `values` (in `model_weights` order) to `model`, checking shapes."""
    variables = model_weights(model)
    if len(values) != len(variables):
        raise ValueError(
            f"Expected {len(variables)} weight arrays for model `{model.name}`. "
            f"Received: {len(values)}"
        )
    for variable, value in zip(variables, values):
        if tuple(np.shape(value)) != tuple(variable.shape):
            raise ValueError(
                f"Weight `{variable.path}` has shape {tuple(variable.shape)}; the "
                f"received array has shape {tuple(np.shape(value))}. The models of "
                "the server and the clients must have the same architecture."
            )
        variable.assign(value)


def get_weights(model):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in model_weights(model)]


def optimizer_config(optimizer):
    """A Keras optimizer (instance, name or config) as a plain, picklable config."""
    return keras.optimizers.serialize(keras.optimizers.get(optimizer))


def client_rng(seed, server_round, client_id):
    """The random stream of one client in one round (same in-process and on Flower)."""
    return np.random.default_rng([int(seed), int(server_round), int(client_id)])


@export("keras_efficient.federated.ClientUpdate")
class ClientUpdate:
    """`local_epochs` of minibatch training of `model_fn()` on one client's data.

    Batches have one static shape (`batch_size`, or `pad_to` examples when
    `batch_size` is None), so the compiled train step is traced once: a short
    batch is padded with zero-weight rows, and the real rows' sample weights are
    scaled so the loss is the mean over the real examples. Layers that mix the
    examples of a batch (BatchNormalization) would see the padding; federated
    models usually use GroupNormalization or LayerNormalization instead.

    Args:
        model_fn: zero-argument function returning a compiled Keras model (its
            `loss` is trained, its metrics evaluate the global model).
        client_optimizer: a Keras optimizer (instance, name or config); a fresh
            copy is used, and its state is reset for every client.
        local_epochs: passes over the client's data per round (E).
        batch_size: local minibatch size (B), or None for the full client data
            (FedSGD's B = ∞).
        proximal_mu: FedProx's μ >= 0.
    """

    def __init__(self, model_fn, client_optimizer, local_epochs=1, batch_size=None,
                 proximal_mu=0.0):
        if not callable(model_fn):
            raise TypeError(
                "Invalid type received for argument `model_fn`. Expected a function "
                f"returning a compiled Keras model. Received: {model_fn!r}"
            )
        self.model_fn = model_fn
        self.client_optimizer = optimizer_config(client_optimizer)
        self.local_epochs = validate_size("local_epochs", local_epochs)
        if batch_size is not None:
            validate_size("batch_size", batch_size)
        self.batch_size = batch_size
        self.proximal_mu = validate_number("proximal_mu", proximal_mu, 0)
        self._model = None

    def __getstate__(self):
        # Pickled into Flower's workers without the built model.
        state = dict(self.__dict__)
        state["_model"] = None
        state.pop("_trainer", None)
        state.pop("_optimizer_initial", None)
        return state

    @property
    def model(self):
        """The Keras model of this process (built on first use)."""
        if self._model is None:
            self._build()
        return self._model

    def _build(self):
        self._model, self._trainer = self.new_trainer()
        self._optimizer_initial = [
            keras.ops.convert_to_numpy(v.value) for v in self._trainer.optimizer.variables]

    def new_trainer(self):
        """A fresh `(model, trainer)`: `model_fn()`, and the model with the client
        loss (FedProx) compiled with a fresh, built client optimizer."""
        model = self.model_fn()
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid value received for argument `model_fn`. Expected a function "
                f"returning a Keras model. It returned: {type(model).__name__}"
            )
        if getattr(model, "loss", None) is None:
            raise ValueError(
                "`model_fn` must return a compiled model: FedAvg trains its `loss` "
                "and reports its metrics. Call `model.compile(loss=..., metrics=...)` "
                "inside `model_fn`."
            )
        if not model.built:
            raise ValueError(
                "`model_fn` must return a built model (give it an `Input` or call "
                "`model.build(input_shape)`)."
            )
        trainer = _ProximalModel(model, self.proximal_mu)
        trainer.compile(
            optimizer=keras.optimizers.deserialize(self.client_optimizer),
            loss=model.loss,
            jit_compile=model.jit_compile,
        )
        trainer.optimizer.build(trainer.trainable_variables)
        return model, trainer

    def start(self, trainer, weights):
        """Put a client's start state in `trainer`: the global `weights`, FedProx
        anchors on them, and a fresh optimizer state."""
        set_weights(trainer.inner, weights)
        for anchor, value in zip(trainer.anchors, weights):
            anchor.assign(value)
        for variable, value in zip(trainer.optimizer.variables, self._optimizer_initial):
            variable.assign(value)

    def num_steps(self, num_examples):
        """Local optimizer steps for a client with `num_examples` examples."""
        per_epoch = 1 if self.batch_size is None else math.ceil(num_examples / self.batch_size)
        return self.local_epochs * per_epoch

    def batches(self, num_examples, rng, pad_to=None):
        """The local steps of a client with `num_examples` examples, in order.

        Args:
            num_examples: the client's example count.
            rng: a `numpy.random.Generator` for the shuffling.
            pad_to: the static batch size when `batch_size` is None (the largest
                client's size, so every client shares one trace).

        Returns:
            A list with one `(index, sample_weight)` pair per step: example
            indices padded to the static batch size, and the weights (zero on
            padding, `size / real` on real rows, so the loss is their mean).
        """
        size = self.batch_size or pad_to or num_examples
        if num_examples > size and self.batch_size is None:
            raise ValueError(
                f"`pad_to`={pad_to} is smaller than the client's {num_examples} examples.")
        steps = []
        for _ in range(self.local_epochs):
            order = rng.permutation(num_examples)
            for start in range(0, num_examples, size):
                index = order[start:start + size]
                real = len(index)
                padded = np.concatenate([index, np.zeros(size - real, dtype=index.dtype)])
                weight = np.zeros(size, dtype="float32")
                weight[:real] = size / real
                steps.append((padded, weight))
        return steps

    def __call__(self, weights, x, y, rng, pad_to=None):
        """Train from `weights` on `(x, y)` and return the new weights.

        Args:
            weights: the global weights (`model_weights` order).
            x, y: the client's examples.
            rng: a `numpy.random.Generator` for the shuffling.
            pad_to: the static batch size when `batch_size` is None.

        Returns:
            The client's weights after training, as numpy arrays.
        """
        model, trainer = self.model, self._trainer
        x, y = np.asarray(x), np.asarray(y)
        steps = self.batches(len(x), rng, pad_to)
        self.start(trainer, weights)
        for index, weight in steps:
            trainer.train_on_batch(x[index], y[index], sample_weight=weight)
        return get_weights(model)
