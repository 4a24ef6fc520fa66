"""bench/families.py: one round on two families gives BERT's ratio 1 and sends each family only what it accepts."""

import json

from bench.families import FAMILIES, batch_for, build, main
from tests.model.family_zoo import FAMILIES as TESTED


def test_a_round_writes_ratios_to_bert(tmp_path, capsys):
    main(["--rounds", "1", "--families", "distilbert", "--json", str(tmp_path / "speed.json")])
    result = json.loads((tmp_path / "speed.json").read_text())
    assert result["ratios"]["bert"] == 1.0 and result["ratios"]["distilbert"] > 0
    assert {"settings", "machine", "commit"} <= set(result)
    assert "| distilbert |" in capsys.readouterr().out


def test_a_family_without_segments_gets_no_token_type_ids():
    assert set(batch_for(build("distilbert"))) == {"input_ids", "attention_mask"}
    assert set(batch_for(build("bert"))) == {"input_ids", "attention_mask", "token_type_ids"}


def test_the_benchmark_times_every_family_the_tests_cover():
    assert FAMILIES == TESTED
