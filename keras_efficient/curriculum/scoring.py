"""Scoring functions for curriculum learning that need no training run of
their own: rarity of an example's tokens or features (Bengio et al. 2009) and
a pre-trained teacher's loss or confidence (Hacohen & Weinshall 2019's
transfer scoring). The statistics of a training run (mean loss, first-learned
epoch, forgetting events) come from `ExampleStatistics`. Every score is
"higher is harder"."""

import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


@export("keras_efficient.curriculum.rarity_scores")
def rarity_scores(tokens, padding_id=None, reduction="mean"):
    """How rare an example's tokens (or categorical features) are in the data.

    With f(v) the frequency of value v among all (non-padding) entries of
    `tokens`, an example's score is the mean (or max) of -log f(v) over its
    entries: examples made of rare tokens are harder (the book; Bengio et al.
    enable sentences whose words are among the K most frequent first).

    Args:
        tokens: integers, shape `(N, L)` (token ids, or ids of categorical
            feature values), or a list of N integer sequences of any length.
        padding_id: a value to ignore (e.g. 0 for padded sequences).
        reduction: "mean" (average surprisal) or "max" (the rarest token).

    Returns:
        float64 array of N scores (0 for an example without tokens).

    Example:

    >>> rarity_scores([[1, 1], [1, 2]]).round(3).tolist()
    [0.288, 0.837]
    """
    validate_choice("reduction", reduction, ("mean", "max"))
    if padding_id is not None:
        validate_number("padding_id", padding_id, integer=True)
    sequences = [np.asarray(row, dtype="int64").reshape(-1) for row in tokens]
    if padding_id is not None:
        sequences = [row[row != padding_id] for row in sequences]
    values, counts = np.unique(np.concatenate(sequences), return_counts=True)
    surprisal = dict(zip(values.tolist(), (-np.log(counts / counts.sum())).tolist()))
    reduce = np.mean if reduction == "mean" else np.max
    return np.array([reduce([surprisal[v] for v in row.tolist()]) if len(row) else 0.0
                     for row in sequences])


@export("keras_efficient.curriculum.teacher_scores")
def teacher_scores(teacher, x, y, kind="loss", from_logits=False, batch_size=256):
    """Difficulty by a pre-trained teacher: its loss or its confidence in the label.

    - "loss": the teacher's cross-entropy on the example, -log p(y | x).
    - "confidence": 1 - p(y | x), Hacohen & Weinshall's transfer scoring
      (bounded; it orders examples as the loss does, but averages differently
      across teachers or runs).

    Args:
        teacher: a trained classifier (`keras.Model`) predicting class
            probabilities (or logits, with `from_logits=True`).
        x: the inputs.
        y: integer labels, shape `(N,)`, or one-hot `(N, K)`.
        kind: "loss" or "confidence".
        from_logits: whether the teacher outputs logits.
        batch_size: prediction batch size.

    Returns:
        float64 array of N scores, higher is harder.

    Reference:
        Hacohen & Weinshall, "On the Power of Curriculum Learning in Training
        Deep Networks", ICML 2019.
    """
    validate_choice("kind", kind, ("loss", "confidence"))
    if not callable(getattr(teacher, "predict", None)):
        raise TypeError("Invalid type received for argument `teacher`. Expected a "
                        f"keras.Model (with `predict`). Received: teacher={teacher!r}")
    validate_size("batch_size", batch_size)
    outputs = np.asarray(teacher.predict(x, batch_size=batch_size, verbose=0), "float64")
    if from_logits:
        outputs = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        outputs /= outputs.sum(axis=-1, keepdims=True)
    y = np.asarray(y)
    labels = y.argmax(axis=-1) if y.ndim == outputs.ndim else y.reshape(-1)
    if len(labels) != len(outputs):
        raise ValueError(f"Invalid value received for argument `y`. Expected one label per "
                         f"example ({len(outputs)}). Received: {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= outputs.shape[-1]):
        raise ValueError(f"Invalid value received for argument `y`. Expected class ids in "
                         f"[0, {outputs.shape[-1]}). Received: labels from {labels.min()} "
                         f"to {labels.max()}")
    probability = outputs[np.arange(len(labels)), labels.astype("int64")]
    if kind == "confidence":
        return 1.0 - probability
    return -np.log(np.maximum(probability, np.finfo("float64").tiny))

