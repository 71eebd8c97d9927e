"""Find DICOM image series in files and folders, reading headers only.

Files are grouped by SeriesInstanceUID. Objects that are not images (SR, RT, presentation
states, SEG, DICOMDIR) are skipped with a reason, and files that claim to be DICOM but
cannot be read (truncated, sequences nested too deeply) are reported with one, so the
import can say which file was refused and why. :mod:`portal.imaging.dicom` reads a found
series' voxels.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from portal.imaging.errors import exception_text

__all__ = ["NON_IMAGE_MODALITIES", "READ_ERRORS", "DicomSeries", "find_dicom_series"]

logger = logging.getLogger(__name__)

#: Modalities of objects that may carry Rows/Columns but are not images to review.
NON_IMAGE_MODALITIES = frozenset(
    {"SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "RTDOSE", "PR", "KO", "SEG", "REG", "DOC"}
)

# What pydicom raises on files that are not DICOM, truncated or malformed; RecursionError
# for sequences nested deeper than Python's stack (pydicom parses them recursively).
READ_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    struct.error,
    RecursionError,
)
UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass
class DicomSeries:
    """The files of one image series, found by :func:`find_dicom_series`.

    Parameters
    ----------
    series_uid : str
        SeriesInstanceUID shared by the files.
    paths : list of pathlib.Path
        The image files, sorted by path (not by slice position).
    modality : str
        DICOM modality code of the first file.
    description : str
        SeriesDescription of the first file ("" when absent).
    """

    series_uid: str
    paths: list[Path] = field(default_factory=list)
    modality: str = ""
    description: str = ""


def _iter_files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            logger.info("skipping %s: no such file or folder", path)


def truncation(ds: Dataset, path: Path) -> str | None:
    """Why ``ds`` was cut short, when its last element runs past the end of the file.

    pydicom reads a value the file ends in the middle of without complaint (the value is
    just shorter); call this before touching any element, while they are still raw.
    Deflated files are left to the inflater: their positions are not file offsets.
    """
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if not ds or syntax == DeflatedExplicitVRLittleEndian:
        return None
    # keep_deferred: a value _read_file left in the file (defer_size) is not read here.
    last = ds.get_item(max(ds.keys()), keep_deferred=True)
    if not isinstance(last, RawDataElement) or last.length == UNDEFINED_LENGTH:
        return None
    missing = last.value_tell + last.length - os.path.getsize(path)
    if missing <= 0:
        return None
    return (
        f"file is truncated: element {last.tag} declares {last.length} bytes, "
        f"{missing} of them are missing"
    )


_NESTED_TOO_DEEPLY = "DICOM sequences are nested too deeply to read"
# Real objects nest a few levels (enhanced multi-frame: about four). Deeper is hostile, and
# whether pydicom itself gives up depends on the interpreter's recursion limit.
_MAX_SEQUENCE_DEPTH = 32


def _too_deep(ds: Dataset) -> str | None:
    """The refusal for a header whose sequences nest beyond `_MAX_SEQUENCE_DEPTH`."""
    stack = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for element in current:
            if element.VR == "SQ":
                if depth + 1 > _MAX_SEQUENCE_DEPTH:
                    return f"{_NESTED_TOO_DEEPLY} (more than {_MAX_SEQUENCE_DEPTH} levels)"
                stack.extend((item, depth + 1) for item in element.value)
    return None


def unreadable_reason(exc: BaseException, path: Path) -> str:
    if isinstance(exc, RecursionError):
        return _NESTED_TOO_DEEPLY
    return f"not a readable DICOM file ({exception_text(exc, path)})"


def _skip_reason(ds: Dataset) -> str | None:
    modality = str(ds.get("Modality", ""))
    if modality in NON_IMAGE_MODALITIES:
        return f"modality {modality} is not an image"
    if "Rows" not in ds or "Columns" not in ds:
        return "no image pixel module (not an image object)"
    if not ds.get("SeriesInstanceUID"):
        return "no SeriesInstanceUID"
    return None


def find_dicom_series(
    paths: Iterable[Path],
    *,
    skipped: list[tuple[Path, str]] | None = None,
    unreadable: list[tuple[Path, str]] | None = None,
) -> list[DicomSeries]:
    """Group the DICOM image files under ``paths`` by SeriesInstanceUID.

    Only headers are read. Files that are not DICOM (no ``DICM`` preamble)
    and DICOM objects that are not images (SR, RT structure sets,
    presentation states, segmentations, DICOMDIR, ...) are skipped and
    logged at INFO without any patient data.

    Parameters
    ----------
    paths : iterable of pathlib.Path
        Files and folders; folders are searched recursively.
    skipped : list, optional
        When given, ``(path, reason)`` is appended for every DICOM object that was
        read but skipped because it is not an image (files that are not DICOM are
        not listed).
    unreadable : list, optional
        When given, ``(path, reason)`` is appended for every file with a DICOM
        preamble whose header cannot be read: truncated, malformed, or holding
        sequences nested too deeply.

    Returns
    -------
    list of DicomSeries
        Ordered by the first path of each series; paths sorted within a series.
    """
    by_uid: dict[str, DicomSeries] = {}
    seen: set[Path] = set()
    for path in _iter_files(paths):
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
            broken = truncation(ds, path) or _too_deep(ds)
        except READ_ERRORS as exc:
            logger.info("skipping %s: not a readable DICOM file (%s)", path, type(exc).__name__)
            if unreadable is not None and not isinstance(exc, InvalidDicomError):
                unreadable.append((path, unreadable_reason(exc, path)))
            continue
        if broken is not None:
            logger.info("skipping %s: %s", path, broken)
            if unreadable is not None:
                unreadable.append((path, broken))
            continue
        reason = _skip_reason(ds)
        if reason is not None:
            logger.info("skipping %s: %s", path, reason)
            if skipped is not None:
                skipped.append((path, reason))
            continue
        uid = str(ds.SeriesInstanceUID)
        series = by_uid.get(uid)
        if series is None:
            series = by_uid[uid] = DicomSeries(
                uid, [], str(ds.get("Modality", "")), str(ds.get("SeriesDescription", ""))
            )
        series.paths.append(path)
    result = list(by_uid.values())
    for series in result:
        series.paths.sort()
    result.sort(key=lambda s: (s.paths[0], s.series_uid))
    return result
