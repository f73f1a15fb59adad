"""Step-exact, multi-worker-safe backup and restore of a training run."""

import json
import os
import shutil

import keras

from keras_efficient.backend import keras_compat
from keras_efficient.distribute.multi_worker import task_info
from keras_efficient.utils import MAX_SIZE
from keras_efficient.utils import register
from keras_efficient.utils import validate_path


@register("keras_efficient.callbacks.BackupAndRestore",
          "keras_efficient.distribute.BackupAndRestore")
class BackupAndRestore(keras.callbacks.Callback):
    """Back up weights, optimizer state and position; resume exactly after a crash.

    Keras's `BackupAndRestore` resumes at the start of the interrupted epoch, so
    with `save_freq=<int>` the steps between the epoch's start and the backup
    are applied twice; under `MultiWorkerMirroredStrategy` every worker writes
    the same files. This callback records the epoch *and* the steps done in it,
    and each worker writes its own folder (`backup_dir/worker-<i>`; the
    backup of a one-process run goes in `backup_dir` itself), with atomic
    renames, so a worker killed mid-write leaves the previous backup intact.

    With `ke.distribute.fit`, which skips the batches already trained, a
    restarted run applies every step exactly once and ends with the weights of
    an uninterrupted run. With plain `model.fit`, only epoch-boundary backups
    can be resumed (`save_freq="epoch"`); a mid-epoch backup raises a
    `ValueError` saying so, rather than silently repeating steps.

    Args:
        backup_dir: folder for the backups (created when needed).
        save_freq: "epoch", or an integer: back up every `save_freq` steps (and
            at every epoch's end).
        delete_checkpoint: delete this worker's backup when training completes.

    Example:

    >>> backup = BackupAndRestore("/tmp/run1", save_freq=50)
    >>> history = ke.distribute.fit(model, dataset, epochs=3, steps_per_epoch=200,
    ...                             callbacks=[backup])
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or not 1 <= save_freq <= MAX_SIZE):
            raise ValueError("Invalid value received for argument `save_freq`. Expected 'epoch' "
                             f"or an integer in [1, {MAX_SIZE}]. Received: save_freq={save_freq!r}")
        self.backup_dir = validate_path("backup_dir", backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        # Set by `resume`: the run's epoch count and, while finishing an
        # interrupted epoch, how many of its steps were done before the restart.
        self.total_epochs = None
        self.step_offset = 0
        self._managed = False
        self._epoch = 0
        self._steps_since_save = 0

    @property
    def worker_dir(self):
        """This worker's own backup folder."""
        task_type, task_index, num_workers = task_info()
        if num_workers == 1:
            return self.backup_dir
        return os.path.join(self.backup_dir, f"{task_type}-{task_index}")

    def _position_path(self):
        return os.path.join(self.worker_dir, "position.json")

    def restore(self, model):
        """Load the latest backup into `model`; return `(epoch, steps_done_in_epoch)`.

        Returns `(0, 0)` when there is no backup. The model must be built.
        """
        if not os.path.exists(self._position_path()):
            return 0, 0
        with open(self._position_path()) as file:
            position = json.load(file)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(self.worker_dir, position["weights"]))
        return int(position["epoch"]), int(position["step"])

    def resume(self, model, total_epochs):
        """Restore `model` for a caller that restarts `fit` itself; return `(epoch, step)`.

        `ke.distribute.fit` calls it, then starts `fit` at `epoch` (on the
        remaining batches of that epoch when `step > 0`). From then on this
        callback leaves `fit`'s initial epoch alone, counts that epoch's steps
        from `step`, and deletes the backup after `total_epochs` epochs rather
        than at the end of each `fit` call.
        """
        self._managed = True
        self.total_epochs = total_epochs
        epoch, step = self.restore(model)
        self.step_offset = step
        return epoch, step

    def on_train_begin(self, logs=None):
        if self._managed:
            return
        epoch, step = self.restore(self.model)
        if step:
            raise ValueError(
                f"The backup in {self.worker_dir} was taken in the middle of epoch {epoch} "
                f"(after {step} steps). Plain `model.fit` can only restart that epoch from "
                "its beginning, which would apply those steps twice: resume with "
                "`ke.distribute.fit`, or back up with save_freq='epoch'."
            )
        keras_compat.set_initial_epoch(self.model, epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._steps_since_save += 1
        if self._steps_since_save >= self.save_freq:
            self._save(self._epoch, self.step_offset + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        total = self.total_epochs or self.params.get("epochs")
        if self.delete_checkpoint and self._epoch + 1 >= total:
            shutil.rmtree(self.worker_dir, ignore_errors=True)

    def _save(self, epoch, step):
        self._steps_since_save = 0
        folder = self.worker_dir
        os.makedirs(folder, exist_ok=True)
        # A new weights file, then an atomic switch of position.json to it: a
        # worker killed at any point leaves a consistent backup behind.
        weights = f"epoch{epoch}-step{step}.weights.h5"
        self.model.save_weights(os.path.join(folder, weights))
        position = self._position_path()
        with open(position + ".tmp", "w") as file:
            json.dump({"epoch": epoch, "step": step, "weights": weights}, file)
        os.replace(position + ".tmp", position)
        for name in os.listdir(folder):
            if name.endswith(".weights.h5") and name != weights:
                os.remove(os.path.join(folder, name))

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {"backup_dir": self.backup_dir, "save_freq": self.save_freq,
                "delete_checkpoint": self.delete_checkpoint}
