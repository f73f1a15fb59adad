"""The clients of a round trained at once: vectorized over clients, split over devices.

`ClientUpdate` trains one client after another through Keras's stateful train
step. `ParallelClientUpdate` runs the same local steps (same batches, same
padding and loss weights) as one compiled pure function of the global weights:
each local step is `stateless_call` of the loss, its gradient, and the
optimizer's `stateless_apply`, so every client carries its own weights and
optimizer state; the step is vectorized over the clients (`vmap`) and the
client axis is split over the devices (one block of clients per device).

It needs the JAX backend: Keras's TensorFlow optimizer has no
`stateless_apply` (it raises: its update goes through `tf.distribute`, whose
`MirroredStrategy` also all-reduces the gradients of its replicas, so replicas
cannot hold different clients). On TensorFlow the clients run one after another.
"""

import keras
import numpy as np

from keras_efficient import backend


def check_parallel_support(model):
    """Raise a clear error if clients of `model` cannot be trained in parallel."""
    if keras.backend.backend() != "jax":
        raise ValueError(
            "`parallel_clients=True` needs the JAX backend (KERAS_BACKEND=jax): each "
            "client's step is the optimizer's `stateless_apply`, which Keras's "
            "TensorFlow optimizer does not support (it is tied to tf.distribute, whose "
            "replicas all-reduce their gradients). Received backend: "
            f"{keras.backend.backend()}. Use parallel_clients=False on TensorFlow."
        )
    if model.non_trainable_weights:
        raise ValueError(
            "`parallel_clients=True` trains the trainable weights only; the model has "
            f"non-trainable weights ({[w.path for w in model.non_trainable_weights]}), "
            "e.g. BatchNormalization statistics, which the clients would update. Use "
            "GroupNormalization or LayerNormalization, or parallel_clients=False."
        )
    weights = {id(w) for w in model.weights}
    states = [v.path for v in model.variables if id(v) not in weights]
    if states:
        raise ValueError(
            "`parallel_clients=True` does not support random layers (Dropout, noise, "
            f"augmentation): their seed states ({states}) would be shared by every "
            "client and step of the compiled round. Use parallel_clients=False."
        )


class ParallelClientUpdate:
    """`ClientUpdate`'s local training for several clients at once (JAX backend).

    Clients with fewer local steps than the longest get masked steps that leave
    their state unchanged, so every round of a `fit` has one static shape and
    one compiled function. With several devices the clients are padded to a
    multiple of the device count with idle clients and split evenly.

    Args:
        client_update: the `ClientUpdate` whose model, optimizer, E and B are used.
    """

    def __init__(self, client_update):
        self.client_update = client_update
        check_parallel_support(client_update.model)
        self._train = None

    def _local_step(self, params, optimizer_values, anchors, x, y, weight):
        trainer = self.client_update._trainer

        def loss_fn():
            y_pred = trainer(x, training=True)
            return trainer.compute_loss(x, y, y_pred, weight, training=True), None

        with keras.StatelessScope():
            _, _, gradients = backend.stateless_value_and_gradients(
                loss_fn, trainer.trainable_variables, params,
                list(zip(trainer.anchors, anchors)))
        return trainer.optimizer.stateless_apply(optimizer_values, gradients, params)

    def _train_clients(self, params, optimizer_values, x, y, weight, active):
        """Local training of every client (leading axis of x, y, weight, active)."""
        where = keras.ops.where

        def one_client(data):
            x, y, weight, active = data

            def step(i, state):
                new = self._local_step(*state, params, x[i], y[i], weight[i])
                return tuple([where(active[i], n, o) for n, o in zip(news, olds)]
                             for news, olds in zip(new, state))

            final, _ = keras.ops.fori_loop(
                0, x.shape[0], step, (list(params), list(optimizer_values)))
            return final

        return keras.ops.vectorized_map(one_client, (x, y, weight, active))

    def __call__(self, weights, clients, pad_to=None):
        """Train every client from `weights`; return their new weights.

        Args:
            weights: the global weights (`model_weights` order, trainable only
                since the model has no others).
            clients: one `(x, y, rng)` per client.
            pad_to: the static batch size when `batch_size` is None.

        Returns:
            One list of numpy weight arrays per client, in `clients` order.
        """
        import jax

        update = self.client_update
        plans = [update.batches(len(x), rng, pad_to) for x, _, rng in clients]
        devices = keras.distribution.list_devices()
        count = -(-len(clients) // len(devices)) * len(devices)
        steps = max(update.num_steps(pad_to or max(len(x) for x, _, _ in clients)),
                    max(len(plan) for plan in plans))
        size = len(plans[0][0][1])
        x0, y0 = np.asarray(clients[0][0]), np.asarray(clients[0][1])
        x = np.zeros((count, steps, size) + x0.shape[1:], x0.dtype)
        y = np.zeros((count, steps, size) + y0.shape[1:], y0.dtype)
        weight = np.zeros((count, steps, size), "float32")
        active = np.zeros((count, steps), bool)
        for k, ((client_x, client_y, _), plan) in enumerate(zip(clients, plans)):
            for s, (index, step_weight) in enumerate(plan):
                x[k, s] = np.asarray(client_x)[index]
                y[k, s] = np.asarray(client_y)[index]
                weight[k, s], active[k, s] = step_weight, True
        mesh = keras.distribution.DeviceMesh((len(devices),), ["clients"], devices)
        batched = [
            keras.distribution.distribute_tensor(
                a, keras.distribution.TensorLayout(["clients"] + [None] * (a.ndim - 1), mesh))
            for a in (x, y, weight, active)
        ]
        if self._train is None:
            self._train = jax.jit(self._train_clients)
        trained = self._train(weights, update._optimizer_initial, *batched)
        trained = [np.asarray(w) for w in trained]
        return [[w[k] for w in trained] for k in range(len(clients))]
