"""The tiny encoder of each family (tests/model/tiny_families.py), written once per session and loaded by path."""

from __future__ import annotations

import pytest

from tests.model.tiny_families import write_tiny_family


@pytest.fixture(scope="session")
def family_encoder(tmp_path_factory):
    """family -> the folder of its tiny random encoder, written on first use."""
    folders: dict[str, str] = {}

    def folder(family: str) -> str:
        if family not in folders:
            folders[family] = write_tiny_family(tmp_path_factory.mktemp(family), family)
        return folders[family]

    return folder
