"""The clients of a round trained at once, split over the devices.

`ClientUpdate` trains one client after another through Keras's train step.
`ParallelClientUpdate` runs the same local steps (same batches, same padding
and loss weights) for every client of a round in one compiled function, with
the clients split over the devices:

- JAX: the local training is a pure function of the global weights — each
  local step is the loss under `StatelessScope` (Keras's `stateless_call`
  mechanism), its gradient and the optimizer's `stateless_apply` — vectorized
  over the clients (`vmap`), with the client axis laid out over a one-axis
  `keras.distribution.DeviceMesh` (one block of clients per device).
- TensorFlow: Keras's TensorFlow optimizer has no `stateless_apply` (it raises:
  its update goes through `tf.distribute`, and a `MirroredStrategy` all-reduces
  its replicas' gradients inside the optimizer, so replicas cannot hold
  different clients). Each client slot instead gets its own model and optimizer
  (built once from `model_fn`), and one `tf.function` runs client k's steps on
  device k mod n; the device subgraphs are independent, so TensorFlow runs them
  concurrently.
"""

import keras
import numpy as np

from keras_efficient import backend
from keras_efficient.federated.client import get_weights


def check_parallel_support(model):
    """Raise a clear error if clients of `model` cannot be trained in parallel."""
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
            f"augmentation): their seed states ({states}) would not follow the "
            "sequential clients' draws. Use parallel_clients=False."
        )


def _devices():
    """The devices clients are split over: the backend's accelerators, else CPUs."""
    if keras.backend.backend() == "jax":
        return keras.distribution.list_devices()
    import tensorflow as tf

    return [d.name for d in (tf.config.list_logical_devices("GPU")
                             or tf.config.list_logical_devices("CPU"))]


class ParallelClientUpdate:
    """`ClientUpdate`'s local training for several clients at once.

    Clients with fewer local steps than the longest get masked steps that leave
    their state unchanged, so every round of a `fit` has one static shape and
    one compiled function. The clients are padded with idle ones to a multiple
    of the device count.

    Args:
        client_update: the `ClientUpdate` whose model, optimizer, E and B are used.
    """

    def __init__(self, client_update):
        self.client_update = client_update
        check_parallel_support(client_update.model)
        self._train = None
        self._trainers = []  # TensorFlow: one (model, trainer) per client slot

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
        update = self.client_update
        plans = [update.batches(len(x), rng, pad_to) for x, _, rng in clients]
        devices = _devices()
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
        run = self._run_jax if keras.backend.backend() == "jax" else self._run_tensorflow
        trained = run(weights, (x, y, weight, active), devices)
        return trained[:len(clients)]

    # JAX: a pure function of the weights, vmapped over the clients.

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

    def _run_jax(self, weights, arrays, devices):
        import jax

        mesh = keras.distribution.DeviceMesh((len(devices),), ["clients"], devices)
        arrays = [
            keras.distribution.distribute_tensor(
                a, keras.distribution.TensorLayout(["clients"] + [None] * (a.ndim - 1), mesh))
            for a in arrays
        ]
        if self._train is None:
            self._train = jax.jit(self._train_clients)
        trained = self._train(weights, self.client_update._optimizer_initial, *arrays)
        trained = [np.asarray(w) for w in trained]
        return [[w[k] for w in trained] for k in range(len(arrays[0]))]

    # TensorFlow: one model and optimizer per client slot, one device each.

    def _run_tensorflow(self, weights, arrays, devices):
        import tensorflow as tf

        update, count = self.client_update, len(arrays[0])
        if len(self._trainers) != count:
            self._trainers = [update.new_trainer() for _ in range(count)]
            trainers = [trainer for _, trainer in self._trainers]
            self._train = tf.function(
                lambda *arrays: _train_on_devices(trainers, devices, *arrays))
        for _, trainer in self._trainers:
            update.start(trainer, weights)
        self._train(*arrays)
        return [get_weights(model) for model, _ in self._trainers]


def _train_on_devices(trainers, devices, x, y, weight, active):
    """Client k's local steps with `trainers[k]` on `devices[k % len(devices)]`."""
    import tensorflow as tf

    for k, trainer in enumerate(trainers):
        with tf.device(devices[k % len(devices)]):
            for s in tf.range(tf.shape(x)[1]):
                if active[k, s]:
                    with tf.GradientTape() as tape:
                        y_pred = trainer(x[k, s], training=True)
                        loss = trainer.compute_loss(x[k, s], y[k, s], y_pred, weight[k, s],
                                                    training=True)
                    variables = trainer.trainable_variables
                    trainer.optimizer.apply(tape.gradient(loss, variables), variables)
