import json
from pathlib import Path

import pytest

from project.training.job import write_json


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "test_metrics.json"
    write_json(target, {"test/acc": 0.5})
    real_write_text = Path.write_text

    def dies_halfway(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt  # the process is stopped in the middle of writing

    monkeypatch.setattr(Path, "write_text", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        write_json(target, {"test/acc": 0.9, "test/f1": 0.8})
    assert json.loads(target.read_text()) == {"test/acc": 0.5}
