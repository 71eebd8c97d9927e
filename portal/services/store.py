"""The local folder store: content-addressed source files and per-study preview folders.

Writes are staged under a temporary name and renamed into place, and every path written is
remembered by a `StoreTransaction` so a failed import can take back exactly what it added.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

CHUNK = 1 << 20
PREVIEW_FILES = (
    "image.vti.gz",
    "values.vti.gz",
    "labels.vti.gz",
    "thumb.png",
    "mosaic.png",
    "surfaces.json",
    "meta.json",
)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def combined_hash(hashes: Iterable[str]) -> str:
    """Order-independent hash of several file hashes (a series is a set of files)."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def source_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".mgz", ".mgh", ".dcm"):
        if name.endswith(suffix):
            return suffix
    return ""


class StoreTransaction:
    """Adds files to the store; on `rollback()` removes every file and folder it created."""

    def __init__(self, store_dir: Path, preview_dir: Path) -> None:
        self.store_dir = store_dir
        self.preview_dir = preview_dir
        self._created: list[Path] = []

    def __enter__(self) -> StoreTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.rollback()

    def add_source(self, path: Path, sha256: str) -> str:
        """Copy a source file into the store; return its store-relative name."""
        rel = f"{sha256[:2]}/{sha256}{source_suffix(path)}"
        dest = self.store_dir / rel
        if dest.exists():
            return rel  # same bytes already stored (by us or an earlier import): keep it
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        self._created.append(dest)
        return rel

    def add_previews(self, study_uid: str, files: dict[str, bytes]) -> Path:
        """Write a study's preview folder in one rename."""
        unknown = set(files) - set(PREVIEW_FILES)
        if unknown:
            raise ValueError(f"unknown preview files {sorted(unknown)}")
        final = self.preview_dir / study_uid
        staging = self.preview_dir / f".{study_uid}.tmp"
        staging.mkdir(parents=True)
        try:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._created.append(final)
        return final

    def rollback(self) -> None:
        for path in reversed(self._created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._created.clear()


def preview_file(preview_dir: Path, study_uid: str, name: str) -> Path:
    """Path of one preview file of a study (the caller has checked access)."""
    if name not in PREVIEW_FILES:
        raise ValueError(f"unknown preview file {name!r}")
    return preview_dir / study_uid / name


#: Files of one segmentation's preview, under ``<study uid>/segmentations/<id>/``.
SEGMENTATION_PREVIEW_FILES = ("labels.vti.gz", "surfaces.json")


def segmentation_preview_file(
    preview_dir: Path, study_uid: str, segmentation_id: int, name: str
) -> Path:
    """Path of one preview file of a study's segmentation (the caller has checked access)."""
    if name not in SEGMENTATION_PREVIEW_FILES:
        raise ValueError(f"unknown segmentation preview file {name!r}")
    return preview_dir / study_uid / "segmentations" / str(int(segmentation_id)) / name


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file under a temporary name, then rename it into place.

    Two workers writing the same file at once both write whole files and one wins;
    a reader never sees a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
