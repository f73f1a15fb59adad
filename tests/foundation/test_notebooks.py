"""The getting-started notebook runs end to end (smoke mode, offline)."""

import pathlib

from keras_efficient.testing import run_notebook

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"


def test_getting_started__runs_in_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = run_notebook(NOTEBOOKS / "getting_started.ipynb")
    # The notebook's training cell trained the model it built (weights moved from init).
    model = namespace["model"]
    assert namespace["settings"].device_type == "CPU" and model.optimizer.iterations > 0
    report = (tmp_path / "demo_report" / "report.md").read_text()
    assert "| cnn |" in report and "![learning curves" in report
