"""The in-context text classification notebook: smoke mode (offline, a tiny random GPT-2
and mock AG News) on the suite's backend, and its backend choice before Keras loads."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_efficient.testing import run_notebook

NOTEBOOK = (pathlib.Path(__file__).resolve().parents[2] / "notebooks"
            / "in_context_text_classification.ipynb")


@pytest.fixture(scope="module")
def namespace():
    import matplotlib.pyplot as plt

    yield run_notebook(NOTEBOOK)  # it writes no files
    plt.close("all")


def _first_code_cell():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return "".join(next(cell for cell in cells if cell["cell_type"] == "code")["source"])


@pytest.mark.parametrize("environment, backend_argument, expected", [
    ({}, None, "tensorflow"),
    ({"TPU_ACCELERATOR_TYPE": "v5litepod-8"}, None, "jax"),  # a Colab TPU runtime
    ({"COLAB_TPU_ADDR": "10.0.0.2:8470"}, "tensorflow", "tensorflow"),  # BACKEND overrides
    ({"KERAS_BACKEND": "tensorflow", "TPU_NAME": "local"}, None, "tensorflow"),  # set wins
])
def test_in_context_notebook__chooses_backend_before_keras(monkeypatch, environment,
                                                           backend_argument, expected):
    for name in ("KERAS_BACKEND", "TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE",
                 "KAGGLE_TPU"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    source = _first_code_cell()
    assert "import keras" not in source  # the choice must come first
    source = source.replace("BACKEND = None", f"BACKEND = {backend_argument!r}")
    exec(compile(source, "first cell", "exec"), {})  # noqa: S102 - the notebook's cell
    assert os.environ["KERAS_BACKEND"] == expected


def test_in_context_notebook__runs_offline_on_the_suites_backend(namespace):
    assert namespace["SMOKE"] is True
    assert namespace["keras"].backend.backend() == keras.backend.backend()
    label_words = namespace["LABEL_WORDS"]
    pool, tests = namespace["pool_texts"], namespace["test_texts"]
    assert len(pool) == namespace["POOL_SIZE"] and len(tests) == namespace["TEST_SIZE"]
    assert set(namespace["pool_labels"] + namespace["test_labels"]) <= set(label_words)
    # The local byte-level vocabulary covers the mock text and the prompt: lossless.
    tokenizer = namespace["causal_lm"].preprocessor.tokenizer
    for text in (pool[0], namespace["prompt"]):
        assert tokenizer.detokenize(tokenizer(text)) == text
    assert namespace["prompt"].endswith(tests[0] + "\nAnswer:")
    # Greedy decoding: `generate` is the model's own continuation of that prompt.
    expected = namespace["causal_lm"].generate(
        namespace["prompt"], max_length=namespace["prompt_length"] + 5, strip_prompt=True)
    assert namespace["answer"] == expected


def test_in_context_notebook__table_and_curve_agree(namespace):
    results, curves, table = namespace["results"], namespace["curves"], namespace["table"]
    settings, ks = list(namespace["SETTINGS"]), namespace["KS"]
    assert set(results) == {(s, c) for s in settings for c in (False, True)}
    for (setting, calibrate), accuracy in results.items():
        # Accuracies over the 8 test texts are multiples of 1/8.
        assert accuracy * len(namespace["test_texts"]) == pytest.approx(
            round(accuracy * len(namespace["test_texts"])))
    for line, setting in zip(table.splitlines()[2:], settings):
        assert line == (f"| {setting} | {results[setting, False]:.1%} | "
                        f"{results[setting, True]:.1%} |")
    for calibrate, rows in curves.items():
        assert [row["k"] for row in rows] == list(ks)
        # k = 0 has no examples to draw: the curve's point is the zero-shot setting's.
        assert rows[0]["accuracies"] == [results["zero-shot", calibrate]]
        for row in rows[1:]:
            assert len(row["accuracies"]) == namespace["DRAWS"]
            assert row["accuracy"] == pytest.approx(np.mean(row["accuracies"]))
    # The figure: one error-bar series per prompter kind, and the chance line.
    axis = namespace["axis"]
    assert [len(container.lines[0].get_xdata()) for container in axis.containers] == [3, 3]
    chance = [line for line in axis.get_lines() if line.get_label() == "chance"]
    assert chance[0].get_ydata()[0] == pytest.approx(1 / len(namespace["LABEL_WORDS"]))
