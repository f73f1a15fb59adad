"""The Omniglot few-shot notebook runs end to end in smoke mode (offline, TFDS mock Omniglot)."""

import pathlib

import numpy as np
import pytest

from keras_efficient.models import evaluate_episodes
from keras_efficient.testing import run_notebook

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "few_shot_omniglot.ipynb"


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("notebook"))
        yield run_notebook(NOTEBOOK)


def test_few_shot_notebook__trains_and_scores_every_setting(namespace):
    assert namespace["SMOKE"] is True
    # Omniglot's own loader on the mock: 28x28 gray, 4 rotation classes per character.
    assert namespace["x_train"].shape[1:] == (28, 28, 1)
    assert len(np.unique(namespace["y_train"])) == 4 * 12
    for shots, model in namespace["protonets"].items():
        assert int(model.optimizer.iterations) == namespace["TRAIN_STEPS"], shots
    assert set(namespace["mamls"]) == {(w, s) for w in namespace["WAYS"] for s in namespace["SHOTS"]}
    for (ways, shots), model in namespace["mamls"].items():
        assert int(model.optimizer.iterations) == namespace["MAML_STEPS"], (ways, shots)
        assert model.model.output_shape == (None, ways)
    expected = {f"{w}-way {s}-shot" for w in namespace["WAYS"] for s in namespace["SHOTS"]}
    assert set(namespace["results"]) == expected
    for result in namespace["results"].values():
        assert set(result) == {"prototypical", "maml", "transfer"}
        for accuracy in result.values():
            assert len(accuracy.accuracies) == namespace["TEST_EPISODES"]
            assert 0.0 <= accuracy.mean <= 1.0 and accuracy.confidence_interval >= 0.0


def test_few_shot_notebook__reported_accuracy_is_evaluate_episodes_of_the_model(namespace):
    again = evaluate_episodes(namespace["protonets"][1], namespace["test_episodes"](5, 1),
                              namespace["TEST_EPISODES"])
    reported = namespace["results"]["5-way 1-shot"]["prototypical"]
    np.testing.assert_allclose(again.accuracies, reported.accuracies)
