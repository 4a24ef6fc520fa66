"""notebooks/quickstart.ipynb is stored without outputs and runs top to bottom (nbclient) on the tiny encoder."""

import os
import shlex
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import make_rows, write_csv

REPO = Path(__file__).parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_the_quickstart_notebook_runs_on_the_tiny_encoder(tmp_path, tiny_encoder, monkeypatch):
    rows = [{"sentence": row["review"], "label": row["sentiment"]} for row in make_rows(64)]
    train = write_csv(tmp_path / "train.csv", rows)
    options = [
        "--config", str(REPO / "configs" / "own_csv.yaml"), "--model.encoder", tiny_encoder,
        "--data.train_file", str(train), "--data.val_ratio", "0.25", "--data.test_ratio", "0.25",
        "--data.batch_size", "8", "--trainer.max_epochs", "1",
    ]  # fmt: skip
    monkeypatch.setenv("QUICKSTART_FIT_OPTIONS", shlex.join(options))
    monkeypatch.setenv("QUICKSTART_ROOT", str(tmp_path / "runs"))
    # The kernel is this interpreter (its kernelspec runs `python` from PATH) importing this checkout.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.text for output in outputs if output.get("name") == "stdout")
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(figures) == 2  # the two schedules; the loss and lr curves
    assert "| mean |" in text and "| cls |" in text
    for pooler in ("mean", "cls"):
        assert (tmp_path / "runs" / pooler / "lightning_logs" / "version_0" / "test_metrics.json").exists()
    predictions = [line for line in text.splitlines() if line.endswith(("funny and moving film", "boring plot"))]
    assert len(predictions) == 2 and all(line.split()[0] in ("neg", "pos") for line in predictions)
