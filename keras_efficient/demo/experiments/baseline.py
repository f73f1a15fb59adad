"""The reference point: the shared digits CNN trained the plain way, and an MLP.

Every technique's experiment compares against this CNN. (XLA's effect on step
time is measured by `keras-efficient bench xla`, not here: compiling costs more
than the demo's short runs save.)
"""

import keras

from keras_efficient.demo import base


def _compile(model, context):
    model.compile(
        optimizer=context.make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _cnn(context):
    return base.train_classifier(_compile(base.digits_cnn(context), context), context)


def _mlp(context):
    data = context.data
    model = keras.Sequential(
        [
            keras.Input(shape=data.x_train.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(data.num_classes),
        ],
        name="digits_mlp",
    )
    return base.train_classifier(_compile(model, context), context)


base.register_experiment(
    base.Experiment(
        name="baseline",
        title="Plain training of the shared digits CNN",
        description=(
            "The CNN every technique is compared with (two 3×3 convolutions, Adam 1e-3, "
            "batch 64) and a one-hidden-layer MLP for scale."
        ),
        variants={"cnn": _cnn, "mlp": _mlp},
        baseline="cnn",
        epochs=20,
    )
)
