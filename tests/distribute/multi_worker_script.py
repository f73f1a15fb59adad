"""One worker of the multi-worker tests (also importable for the one-process run).

python multi_worker_script.py INDEX PORT0,PORT1 OUT.npz [--backup DIR]
    [--die-after STEPS --marker FILE]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_efficient as ke

GLOBAL_BATCH = 16
STEPS_PER_EPOCH = 5
EPOCHS = 3
SAVE_FREQ = 2


class DieAfter(keras.callbacks.Callback):
    """Kills the process after `steps` steps, once (the marker file remembers)."""

    def __init__(self, steps, marker):
        super().__init__()
        self.steps, self.marker, self.seen = steps, marker, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.steps and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)


def train(out_path, backup_dir=None, die_after=None, marker=None):
    strategy = ke.distribute.get_strategy("multi_worker" if "TF_CONFIG" in os.environ
                                          else "auto")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    callbacks = [DieAfter(die_after, marker)] if die_after else []
    if backup_dir:
        callbacks.append(ke.callbacks.BackupAndRestore(backup_dir, save_freq=SAVE_FREQ))
    history = ke.distribute.fit(model, dataset, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                                callbacks=callbacks, verbose=0, shard_policy="data")
    np.savez(out_path, *model.get_weights(), epochs=np.array(history.epoch))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("index", type=int)
    parser.add_argument("ports")
    parser.add_argument("out")
    parser.add_argument("--backup")
    parser.add_argument("--die-after", type=int)
    parser.add_argument("--marker")
    args = parser.parse_args()
    workers = [f"127.0.0.1:{port}" for port in args.ports.split(",")]
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": args.index}})
    train(args.out, args.backup, args.die_after, args.marker)
    sys.exit(0)
