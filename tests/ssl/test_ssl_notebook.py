"""The SimCLR CIFAR-10 notebook runs end to end in smoke mode (offline, digits as mock data)."""

import json
import pathlib

import numpy as np
import pytest

from keras_efficient.testing import run_notebook

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "simclr_cifar10.ipynb"


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    import matplotlib.pyplot as plt

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("notebook"))
        yield run_notebook(NOTEBOOK)
    plt.close("all")


def test_simclr_notebook__pretrains_without_labels_on_mock_cifar(namespace):
    assert namespace["SMOKE"] is True and namespace["settings"].device_type == "CPU"
    # Mock CIFAR-10 in TFDS's format became float images in [0, 1] of CIFAR's shape.
    x_train = namespace["x_train"]
    assert x_train.shape[1:] == (32, 32, 3) and 0.0 <= x_train.min() < x_train.max() <= 1.0
    simclr, history = namespace["simclr"], namespace["history"].history
    epochs, batches = namespace["PRETRAIN_EPOCHS"], len(x_train) // namespace["BATCH_SIZE"]
    assert int(simclr.optimizer.iterations) == epochs * batches
    assert len(history["loss"]) == epochs and np.all(np.isfinite(history["loss"]))
    # Per anchor, NT-Xent = log(1 + sum over negatives of exp((s_k - s_pos) / t)), so
    # with cosine similarities it lies in (0, log(2N - 1) + 2 / t].
    size, temperature = namespace["BATCH_SIZE"], simclr.temperature
    bound = np.log(2 * size - 1) + 2 / temperature
    assert all(0 < loss <= bound for loss in history["loss"])
    assert all(0 < std < 1 for std in history["embedding_std"])
    # The k-NN monitor logged one accuracy per epoch (KNN_EVERY = 1 in smoke mode).
    knn = namespace["knn"].history
    assert len(knn) == epochs and all(0.0 <= value <= 1.0 for value in knn)
    # The encoder is the ResNet up to its pooling: one vector per image.
    assert namespace["encoder"].output_shape == (None, namespace["FILTERS"])


def test_simclr_notebook__few_label_comparison_table(namespace):
    results, table = namespace["results"], namespace["table"]
    y_train = namespace["y_train"]
    assert [r["fraction"] for r in results] == [0.01, 0.1]
    for result in results:
        # Stratified subsets: at least one image per class, about `fraction` of each class.
        counts = np.bincount(y_train, minlength=10)
        expected = np.maximum(1, np.round(result["fraction"] * counts)).sum()
        assert result["labels"] == expected
        assert all(0.0 <= result[key] <= 1.0
                   for key in ("supervised", "linear_probe", "fine_tuned"))
    lines = table.splitlines()
    assert lines[0].startswith("| labels | labelled images | supervised from scratch |")
    assert [line.split(" | ")[:2] for line in lines[2:]] == [
        ["| 1%", f"{results[0]['labels']:,}"], ["| 10%", f"{results[1]['labels']:,}"]]
    assert f"{results[1]['fine_tuned']:.1%}" in lines[3]
    # The bar plot: one bar per label fraction for each of the three classifiers.
    assert [len(bars) for bars in namespace["axis"].containers] == [2, 2, 2]


def _write_notebook(path, *sources, nbformat=4):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["x = 'markdown'"]}]
    cells += [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
               "source": source.splitlines(keepends=True)} for source in sources]
    path.write_text(json.dumps({"nbformat": nbformat, "nbformat_minor": 5, "metadata": {},
                                "cells": cells}))
    return path


def test_run_notebook__switches_smoke_drops_shell_lines_and_shares_globals(tmp_path):
    path = _write_notebook(tmp_path / "a.ipynb", "!pip install nothing\nSMOKE = False\n",
                           "%time y = 1\nsteps = 2 if SMOKE else 1000\n")
    namespace = run_notebook(path)
    assert namespace["SMOKE"] is True and namespace["steps"] == 2
    assert "x" not in namespace and "y" not in namespace  # markdown, `%` lines skipped
    assert run_notebook(path, smoke=False)["steps"] == 1000


def test_run_notebook__rejects_other_formats_and_notebooks_without_smoke_flag(tmp_path):
    with pytest.raises(ValueError, match="nbformat 4 notebook.*nbformat=3"):
        run_notebook(_write_notebook(tmp_path / "old.ipynb", "a = 1", nbformat=3))
    with pytest.raises(ValueError, match="no code cell has the line `SMOKE = False`"):
        run_notebook(_write_notebook(tmp_path / "b.ipynb", "a = 1"))
    with pytest.raises(ZeroDivisionError) as error:
        run_notebook(_write_notebook(tmp_path / "c.ipynb", "SMOKE = False", "1 / 0"))
    assert "c.ipynb[code cell 1]" in str(error.traceback[-1].path)
