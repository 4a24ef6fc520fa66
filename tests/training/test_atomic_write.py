import json
import os

import pytest

from project.training.job import write_json


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "test_metrics.json"
    write_json(target, {"test/acc": 0.5})
    real_write = os.write

    def dies_halfway(descriptor, data):
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise KeyboardInterrupt  # the process is stopped in the middle of writing

    monkeypatch.setattr(os, "write", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        write_json(target, {"test/acc": 0.9, "test/f1": 0.8})
    assert json.loads(target.read_text()) == {"test/acc": 0.5}
    assert [path.name for path in tmp_path.iterdir()] == ["test_metrics.json"]  # no temporary file left
