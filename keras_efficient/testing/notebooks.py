"""Run a notebook's code cells in this process, as the notebook tests do."""

import json
import pathlib

import keras

from keras_efficient.utils import export

SMOKE_OFF, SMOKE_ON = "SMOKE = False", "SMOKE = True"


@export("keras_efficient.testing.run_notebook")
def run_notebook(path, smoke=True):
    """Execute the code cells of the notebook at `path` in order; return their namespace.

    Shell and magic lines (starting with `!` or `%`, e.g. the Colab `!pip install`)
    are dropped. With `smoke=True` the notebook's `SMOKE = False` flag is switched
    to `SMOKE = True`, so a notebook written for Colab/Kaggle runs its small,
    offline configuration. Tracebacks name the notebook and the cell's index.

    Args:
        path: path of an nbformat-4 `.ipynb` file.
        smoke: switch the notebook's `SMOKE = False` line to `SMOKE = True`.

    Returns:
        The dict of globals the cells defined (their variables, models, results).

    Example:

    >>> namespace = run_notebook("notebooks/getting_started.ipynb")  # doctest: +SKIP
    >>> namespace["model"].optimizer.iterations > 0  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    notebook = json.loads(path.read_text())
    if notebook.get("nbformat") != 4:
        raise ValueError(f"Expected an nbformat 4 notebook. Received: {path} with "
                         f"nbformat={notebook.get('nbformat')}")
    sources = [
        "".join(line for line in cell["source"] if not line.lstrip().startswith(("!", "%")))
        for cell in notebook["cells"] if cell["cell_type"] == "code"
    ]
    if smoke:
        if not any(SMOKE_OFF in source for source in sources):
            raise ValueError(f"Cannot run {path} in smoke mode: no code cell has the line "
                             f"`{SMOKE_OFF}`.")
        sources = [source.replace(SMOKE_OFF, SMOKE_ON) for source in sources]
    namespace = {"__name__": "__main__"}
    # A notebook on JAX sets a global distribution (`get_distribution()`): it must
    # not outlive the run.
    distribution = keras.distribution.distribution()
    try:
        for index, source in enumerate(sources):
            code = compile(source, f"{path.name}[code cell {index}]", "exec")
            exec(code, namespace)  # noqa: S102 - running the notebook's own cells is the point
    finally:
        keras.distribution.set_distribution(distribution)
    return namespace
