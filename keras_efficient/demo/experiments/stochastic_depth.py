"""Stochastic depth and DropBlock on a small ResNet, against the same ResNet.

Three residual blocks at 16 channels on the 8x8 digits (`ke.models.build_resnet`).
`stochastic_depth` drops blocks with the paper's linear decay to p_L = 0.5 in
`mode="batch"` (dropped blocks are skipped, so steps get cheaper);
`dropblock` adds DropBlock (rate 0.1, 3x3 blocks) after the last two blocks.
"""


import keras

from keras_efficient.demo import base
from keras_efficient.regularization.resnet import build_resnet

BLOCKS = 3
FILTERS = 16


def _variant(**resnet_kwargs):
    def run(context):
        data = context.data
        model = build_resnet(data.x_train.shape[1:], data.num_classes, blocks=BLOCKS,
                             filters=FILTERS, seed=context.seed, **resnet_kwargs)
        model.compile(
            optimizer=context.make_optimizer(learning_rate=2e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        # Full batches only: a last, smaller batch would trace the step again.
        train_data = base.digits_dataset(context, drop_remainder=True)
        return base.train_classifier(model, context, train_data=train_data)

    return run


base.register_experiment(
    base.Experiment(
        name="stochastic_depth",
        title="Stochastic depth (p_L = 0.5, skipped blocks) and DropBlock on a small ResNet",
        description=(
            f"ResNet of {BLOCKS} basic blocks at {FILTERS} channels on 8x8 digits, Adam. "
            "stochastic_depth: linear decay to p_L = 0.5, mode='batch' (a dropped block "
            "runs neither forward nor backward; expected 2.5 of 3 blocks per step). "
            "dropblock: DropBlock2D(rate=0.1, block_size=3) after blocks 2-3. "
            "Step-time ratios on such a small net include the fixed per-step overhead; "
            "keras_efficient/bench/benchmarks/stochastic_depth.py measures the issue's 64-channel net."
        ),
        variants={
            "plain": _variant(),
            "stochastic_depth": _variant(stochastic_depth=0.5),
            "dropblock": _variant(drop_block_rate=0.1, drop_block_size=3),
        },
        baseline="plain",
        epochs=4,
    )
)
