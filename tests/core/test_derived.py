import json

import pytest

from project.core.assets import Asset, AssetError
from project.core.derived import MANIFEST, DerivedAsset, materialize
from tests.core.test_assets import local_index, make_wheel, sha256  # noqa: F401 (local_index is a fixture)


def counting_build(calls: list):
    def build(sources, folder):
        calls.append(sources)
        (folder / "weights.bin").write_bytes(b"w" * 100 + sources[0].read_bytes())
        (folder / "config.json").write_text('{"hidden_size": 4}')

    return build


def test_a_conversion_of_pinned_archives_runs_once_and_records_its_files_checksums(tmp_path, local_index):  # noqa: F811
    wheel = make_wheel(local_index)
    calls = []
    source = Asset("fake-asset==0.1.0", sha256(wheel), "fake_asset/model/config.json")
    asset = DerivedAsset("fake-model", (source,), counting_build(calls))
    folder = materialize(asset, tmp_path / "cache")
    assert folder.name == asset.key and len(calls) == 1
    assert calls[0][0].read_text() == '{"hidden_size": 4}'  # the build got the fetched member
    assert set(json.loads((folder / MANIFEST).read_text())) == {"weights.bin", "config.json"}
    assert materialize(asset, tmp_path / "cache") == folder and len(calls) == 1  # cached: no second build
    assert not [path for path in (tmp_path / "cache").iterdir() if path.name.startswith(".build-")]


def test_a_tampered_converted_file_is_one_line_saying_how_to_rebuild(tmp_path):
    asset = DerivedAsset("fake-model", (), lambda sources, folder: (folder / "weights.bin").write_bytes(b"w" * 64))
    folder = materialize(asset, tmp_path)
    (folder / "weights.bin").write_bytes(b"x" * 64)  # same size: only the checksum can tell
    with pytest.raises(AssetError) as caught:
        materialize(asset, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "weights.bin" in message and f"delete the folder {folder}" in message


def test_a_missing_converted_file_fails_the_check_too(tmp_path):
    asset = DerivedAsset("fake-model", (), lambda sources, folder: (folder / "weights.bin").write_bytes(b"w"))
    folder = materialize(asset, tmp_path)
    (folder / "weights.bin").unlink()
    with pytest.raises(AssetError, match="missing or differs"):
        materialize(asset, tmp_path)


def test_a_failed_conversion_leaves_nothing_in_the_cache(tmp_path):
    def broken(sources, folder):
        (folder / "half.bin").write_bytes(b"h")
        raise RuntimeError("conversion failed")

    asset = DerivedAsset("fake-model", (), broken)
    with pytest.raises(RuntimeError):
        materialize(asset, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_cache_key_changes_with_the_sources_pins_and_the_version():
    one = DerivedAsset("m", (Asset("a==1", "0" * 64, "x"),), print)
    assert one.key != DerivedAsset("m", (Asset("a==1", "1" * 64, "x"),), print).key
    assert one.key != DerivedAsset("m", one.sources, print, version=2).key
