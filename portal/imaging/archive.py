"""Extract uploaded ZIP archives of images without trusting them.

An archive is checked as a whole before anything is written: entry names
that would land outside the target folder (absolute paths, ``..``), links and
other special files, encrypted entries, nested archives, too many entries, a
too large declared total size, and entries compressed suspiciously well (zip
bombs) are refused. While extracting, the bytes actually written are counted
against the declared sizes, because the sizes in a ZIP header are only
claims. Everything is extracted into a temporary folder next to the target
and renamed into place at the end, so a refusal leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from portal.imaging.errors import ImagingError

__all__ = ["DEFAULT_MAX_RATIO", "extract_zip"]

logger = logging.getLogger(__name__)

#: Largest accepted uncompressed/compressed size ratio of one entry.
DEFAULT_MAX_RATIO = 200

_CHUNK_BYTES = 1024 * 1024


def _entry_parts(path: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """Path components of an entry, refused when it could leave the target."""
    name = info.filename
    # Backslashes are separators for archives made on Windows.
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise ImagingError(path, f"entry {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(unified).parts if p not in ("", "."))
    if ".." in parts:
        raise ImagingError(path, f"entry {name!r} has a '..' path component")
    return parts


def _check_entry_type(path: Path, info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ImagingError(path, f"entry {info.filename!r} is a symbolic link")
    if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ImagingError(path, f"entry {info.filename!r} is not a regular file")
    if info.flag_bits & 0x1:
        raise ImagingError(path, f"entry {info.filename!r} is encrypted")
    if not info.is_dir() and info.filename.lower().endswith(".zip"):
        # Import jobs unpack only the archives they are given: a nested one would be
        # dropped without a word, and unpacking it would multiply the bomb checks.
        raise ImagingError(
            path, f"entry {info.filename!r} is a nested ZIP archive; unpack it first"
        )


def _check_archive(
    path: Path, infos: list[zipfile.ZipInfo], max_total_bytes: int, max_files: int, max_ratio: float
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Refuse the archive from its central directory alone; entries with their paths."""
    if len(infos) > max_files:
        raise ImagingError(
            path,
            f"archive has {len(infos)} entries, more than the limit of {max_files} "
            f"(entry {infos[max_files].filename!r} is over it)",
        )
    total = 0
    seen: set[tuple[str, ...]] = set()
    entries = []
    for info in infos:
        parts = _entry_parts(path, info)
        _check_entry_type(path, info)
        if not parts:
            continue
        if parts in seen:
            raise ImagingError(path, f"entry {info.filename!r} appears twice")
        seen.add(parts)
        total += info.file_size
        if total > max_total_bytes:
            raise ImagingError(
                path,
                f"declared uncompressed size exceeds the limit of {max_total_bytes} bytes "
                f"at entry {info.filename!r}",
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise ImagingError(
                path,
                f"entry {info.filename!r} expands {ratio:.0f} times "
                f"(limit {max_ratio:g}); refusing a possible zip bomb",
            )
        entries.append((info, parts))
    return entries


def _copy_entry(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int
) -> int:
    """Write one entry, refusing more bytes than declared; the bytes written."""
    written = 0
    limit = min(info.file_size, budget)
    with archive.open(info) as src, target.open("wb") as out:
        while chunk := src.read(_CHUNK_BYTES):
            written += len(chunk)
            if written > limit:
                raise ImagingError(
                    path, f"entry {info.filename!r} holds more data than its declared size"
                )
            out.write(chunk)
    return written


def extract_zip(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_total_bytes: int,
    max_files: int,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[Path]:
    """Extract a ZIP archive into a new folder, or refuse it entirely.

    Parameters
    ----------
    path : str or os.PathLike
        The archive.
    dest : str or os.PathLike
        Folder to create (an existing empty folder is replaced). Its parent
        must exist; the temporary folder is made there so the final rename
        stays on one file system.
    max_total_bytes : int
        Largest total uncompressed size, declared and actually written.
    max_files : int
        Largest number of entries (folders included).
    max_ratio : float
        Largest uncompressed/compressed size ratio of any one entry.

    Returns
    -------
    list of pathlib.Path
        The extracted files under ``dest``, in archive order.

    Raises
    ------
    ImagingError
        Naming the archive and the offending entry. ``dest`` is then left
        as it was (absent, or empty).

    Examples
    --------
    >>> import tempfile, zipfile
    >>> from pathlib import Path
    >>> tmp = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "a.zip", "w") as zf:
    ...     zf.writestr("scan/brain.nii", b"not really an image")
    >>> files = extract_zip(tmp / "a.zip", tmp / "out", max_total_bytes=10**6, max_files=10)
    >>> [f.relative_to(tmp).as_posix() for f in files]
    ['out/scan/brain.nii']
    """
    path, dest = Path(path), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f'Argument "dest" must not exist or be an empty folder, got {dest}.')
    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ImagingError(path, f"not a readable ZIP archive ({exc})") from exc
    with archive:
        entries = _check_archive(path, archive.infolist(), max_total_bytes, max_files, max_ratio)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            relative = _extract_all(path, archive, entries, staging, max_total_bytes)
            if dest.exists():
                dest.rmdir()
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    logger.debug("extracted %d files from an archive", len(relative))
    return [dest / rel for rel in relative]


def _extract_all(
    path: Path,
    archive: zipfile.ZipFile,
    entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    staging: Path,
    max_total_bytes: int,
) -> list[Path]:
    """Extract checked entries into ``staging``; file paths relative to it."""
    files = []
    remaining = max_total_bytes
    for info, parts in entries:
        target = staging.joinpath(*parts)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            remaining -= _copy_entry(path, archive, info, target, remaining)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise ImagingError(
                path, f"entry {info.filename!r} cannot be extracted ({exc})"
            ) from exc
        files.append(Path(*parts))
    return files
