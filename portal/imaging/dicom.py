"""Find DICOM image series in files and folders, and read one as a Volume.

Geometry follows the DICOM standard (PS3.3 C.7.6.2.1.1): the row direction
cosine is the direction of increasing column index (voxel axis ``i``), the
column direction cosine that of increasing row index (``j``), and slices are
ordered by their ImagePositionPatient projected on the slice normal
``row x column`` (``k``). File names and InstanceNumber are never trusted for
the order. Positions are LPS in DICOM and converted to RAS+ by negating x and y.

The frames of enhanced multi-frame files are treated like slices, with their
geometry and rescale from the functional groups (see
:mod:`portal.imaging.dicom_frames`). Compressed pixel data (JPEG, JPEG-LS,
JPEG 2000, RLE; deflate is undone when reading) is decoded by pydicom's pixel
handlers, with the pylibjpeg plugins where pydicom has no decoder of its own.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from pydicom.uid import DeflatedExplicitVRLittleEndian

from portal.imaging.dicom_frames import FrameInfo, frame_infos
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.errors import ImagingError, exception_text
from portal.imaging.nifti import DEFAULT_MAX_VOXELS
from portal.imaging.volume import LPS_TO_RAS, Volume

__all__ = [
    "NON_IMAGE_MODALITIES",
    "DicomSeries",
    "find_dicom_series",
    "read_dicom_series",
    "write_dicom_series",
]

logger = logging.getLogger(__name__)

#: Modalities of objects that may carry Rows/Columns but are not images to review.
NON_IMAGE_MODALITIES = frozenset(
    {"SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "RTDOSE", "PR", "KO", "SEG", "REG", "DOC"}
)

# Largest relative deviation of one slice gap from the median gap.
_SPACING_RTOL = 0.01
# Direction cosines written with limited precision still agree to this.
_ORIENTATION_ATOL = 1e-4

# Slices stepping off their normal by more than this are reported as gantry tilt.
_TILT_NOTE_DEG = 0.05

# What pydicom raises on files that are not DICOM, truncated or malformed; RecursionError
# for sequences nested deeper than Python's stack (pydicom parses them recursively).
_READ_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    struct.error,
    RecursionError,
)
_UNDEFINED_LENGTH = 0xFFFFFFFF


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


def _truncation(ds: Dataset, path: Path) -> str | None:
    """Why ``ds`` was cut short, when its last element runs past the end of the file.

    pydicom reads a value the file ends in the middle of without complaint (the value is
    just shorter); call this before touching any element, while they are still raw.
    Deflated files are left to the inflater: their positions are not file offsets.
    """
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if not ds or syntax == DeflatedExplicitVRLittleEndian:
        return None
    last = ds.get_item(max(ds.keys()))
    if not isinstance(last, RawDataElement) or last.length == _UNDEFINED_LENGTH:
        return None
    missing = last.value_tell + last.length - os.path.getsize(path)
    if missing <= 0:
        return None
    return (
        f"file is truncated: element {last.tag} declares {last.length} bytes, "
        f"{missing} of them are missing"
    )


def _unreadable_reason(exc: BaseException, path: Path) -> str:
    if isinstance(exc, RecursionError):
        return "DICOM sequences are nested too deeply to read"
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
            broken = _truncation(ds, path)
        except _READ_ERRORS as exc:
            logger.info("skipping %s: not a readable DICOM file (%s)", path, type(exc).__name__)
            if unreadable is not None and not isinstance(exc, InvalidDicomError):
                unreadable.append((path, _unreadable_reason(exc, path)))
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


@dataclass(frozen=True)
class _Slice:
    """One 2-D frame: a single-frame file or one frame of a multi-frame file."""

    path: Path
    ds: Dataset
    frame: FrameInfo

    @property
    def position_lps(self) -> np.ndarray:
        return self.frame.position_lps


def _read_slices(series: DicomSeries) -> list[_Slice]:
    slices: list[_Slice] = []
    for path in series.paths:
        try:
            ds = pydicom.dcmread(path, force=False)
            broken = _truncation(ds, path)
        except _READ_ERRORS as exc:
            raise ImagingError(path, _unreadable_reason(exc, path)) from exc
        if broken is not None:
            raise ImagingError(path, broken)
        if str(ds.get("SeriesInstanceUID", "")) != series.series_uid:
            raise ImagingError(path, "file does not belong to the series being read")
        if "PixelData" not in ds:
            raise ImagingError(path, "no pixel data")
        slices.extend(_Slice(path, ds, frame) for frame in frame_infos(ds, path))
    if not slices:
        raise ImagingError(series.series_uid, "series has no files")
    return slices


def _check_consistent(slices: Sequence[_Slice]) -> tuple[np.ndarray, np.ndarray]:
    """Orientation (6 cosines) and PixelSpacing shared by all slices."""
    first = slices[0]
    rows, cols = int(first.ds.Rows), int(first.ds.Columns)
    iop, spacing = first.frame.orientation, first.frame.pixel_spacing_mm
    for s in slices[1:]:
        if (int(s.ds.Rows), int(s.ds.Columns)) != (rows, cols):
            raise ImagingError(
                s.path,
                f"image size {int(s.ds.Rows)}x{int(s.ds.Columns)} differs from "
                f"{rows}x{cols} of the first file in the series",
            )
        if not np.allclose(s.frame.orientation, iop, atol=_ORIENTATION_ATOL):
            raise ImagingError(s.path, "ImageOrientationPatient differs within the series")
        if not np.allclose(s.frame.pixel_spacing_mm, spacing, rtol=1e-4):
            raise ImagingError(s.path, "PixelSpacing differs within the series")
    return iop, spacing


def _slice_step_lps(slices: Sequence[_Slice], normal: np.ndarray) -> np.ndarray:
    """World step in LPS mm from one sorted slice to the next (the ``k`` column)."""
    if len(slices) == 1:
        ds = slices[0].ds
        thickness = float(ds.get("SliceThickness") or ds.get("SpacingBetweenSlices") or 1.0)
        return normal * abs(thickness)
    distances = np.array([float(s.position_lps @ normal) for s in slices])
    gaps = np.diff(distances)
    median = float(np.median(gaps))
    if median <= 0 or np.min(gaps) <= 1e-6 * max(median, 1.0):
        i = int(np.argmin(gaps))
        raise ImagingError(
            slices[i + 1].path,
            f"two slices share position {distances[i]:.4f} mm along the normal",
        )
    worst = float(np.max(np.abs(gaps - median)))
    if worst > _SPACING_RTOL * median:
        raise ImagingError(
            slices[0].path,
            f"irregular slice spacing: gaps from {gaps.min():.4f} to {gaps.max():.4f} mm "
            f"(median {median:.4f} mm, tolerance {100 * _SPACING_RTOL:g}%)",
        )
    # The mean step between first and last position keeps any gantry tilt
    # (positions not moving along the normal) in the affine instead of dropping it.
    return (slices[-1].position_lps - slices[0].position_lps) / (len(slices) - 1)


def _geometry_notes(
    slices: Sequence[_Slice], step_lps: np.ndarray, normal: np.ndarray
) -> list[str]:
    """What the reviewer should know about the geometry: tilt, assumed positions."""
    notes = []
    if any(s.frame.assumed for s in slices):
        notes.append(
            "no patient position or orientation in the files: shown as an axis-aligned "
            "stack at the origin, so orientation letters and mm positions are not real"
        )
    length = float(np.linalg.norm(step_lps))
    if len(slices) > 1 and length > 0:
        cosine = min(1.0, abs(float(step_lps @ normal)) / length)
        tilt = float(np.degrees(np.arccos(cosine)))
        if tilt > _TILT_NOTE_DEG:
            notes.append(
                f"gantry tilt of {tilt:.2f} degrees: slices are sheared along the table, "
                "kept in the affine (not resampled), so voxels are not rectangular"
            )
    return notes


def _pixels(s: _Slice) -> np.ndarray:
    try:
        # pydicom caches the decoded array on the dataset, so the frames of
        # one multi-frame file are decoded once.
        stored = s.ds.pixel_array
    except (RuntimeError, NotImplementedError, ValueError, AttributeError, KeyError) as exc:
        syntax = s.ds.file_meta.get("TransferSyntaxUID")
        name = getattr(syntax, "name", "") or "unknown transfer syntax"
        raise ImagingError(s.path, f"cannot decode pixel data ({name}, {syntax}): {exc}") from exc
    if s.frame.index is not None and int(s.ds.get("NumberOfFrames", 1) or 1) > 1:
        stored = stored[s.frame.index]
    if _is_colour(s.ds):
        return _rgb_u8(s, stored)
    if stored.ndim != 2:
        raise ImagingError(s.path, f"expected one 2-D monochrome frame, got {stored.shape}")
    if s.frame.rescale is not None:
        slope, intercept = s.frame.rescale
        return stored.astype(np.float64) * slope + intercept
    return np.asarray(apply_modality_lut(stored, s.ds))


def _is_colour(ds: Dataset) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) == 3


def _rgb_u8(s: _Slice, stored: np.ndarray) -> np.ndarray:
    """One colour frame as (rows, columns, 3) uint8 RGB.

    pydicom already converts YBR_FULL, YBR_FULL_422, YBR_ICT and YBR_RCT to RGB
    and undoes planar configuration; deeper samples are scaled down to 8 bits,
    which is what a screen shows anyway.
    """
    if stored.ndim != 3 or stored.shape[2] != 3:
        raise ImagingError(s.path, f"expected one RGB frame, got an array of {stored.shape}")
    if stored.dtype == np.uint8:
        return stored
    bits = int(s.ds.get("BitsStored") or stored.dtype.itemsize * 8)
    scale = 255.0 / float(2**bits - 1)
    return np.rint(np.clip(stored, 0, 2**bits - 1) * scale).astype(np.uint8)


def _smallest_dtype(values: np.ndarray) -> np.ndarray:
    """int16/int32 when all values are whole numbers that fit, else float32."""
    if values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
    elif np.array_equal(values, np.round(values)):
        low, high = int(values.min()), int(values.max())
    else:
        return values.astype(np.float32)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values.astype(np.float32)


def read_dicom_series(series: DicomSeries, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Volume:
    """Read a DICOM image series (single-frame files or multi-frame) into a Volume.

    Parameters
    ----------
    series : DicomSeries
        As returned by :func:`find_dicom_series`; file order does not matter.
        The frames of multi-frame files are sorted like single-frame slices,
        by their PlanePositionSequence along the normal; a multi-frame file
        without any position becomes an axis-aligned stack at the origin
        spaced by SpacingBetweenSlices (as SimpleITK does, but SimpleITK
        ignores SpacingBetweenSlices and uses 1 mm).
    max_voxels : int
        Refuse series with more voxels, checked before decoding pixels.

    Returns
    -------
    Volume
        Voxels ``(i, j, k)`` = (column, row, slice) after the modality LUT
        (or the PixelValueTransformationSequence of each frame)
        (int16 or int32 when the rescaled values are whole, else float32;
        MONOCHROME1 is inverted so that bright means high), RAS+ affine.

    Raises
    ------
    ImagingError
        Naming the first offending file: unreadable file, pixel data in a
        transfer syntax that cannot be decoded (named in the message), missing
        geometry, size or orientation differing within the series, duplicate
        positions or slice gaps varying by more than 1 %.
    """
    slices = _read_slices(series)
    iop, pixel_spacing = _check_consistent(slices)
    # Cosines written with few digits are not quite unit vectors (0.9995 long in a
    # real CT): unnormalised, they would shrink the voxel size. GDCM and dcm2niix
    # normalise them too.
    lengths = np.linalg.norm(iop.reshape(2, 3), axis=1)
    if not np.all(np.abs(lengths - 1.0) < 0.01):
        raise ImagingError(
            slices[0].path, f"ImageOrientationPatient is not two unit vectors: {iop.tolist()}"
        )
    row_cos, col_cos = iop[:3] / lengths[0], iop[3:] / lengths[1]
    normal = np.cross(row_cos, col_cos)
    slices = sorted(slices, key=lambda s: float(s.position_lps @ normal))
    first = slices[0].ds
    rows, cols = int(first.Rows), int(first.Columns)
    n_voxels = rows * cols * len(slices)
    if n_voxels > max_voxels:
        raise ImagingError(
            slices[0].path, f"series has {n_voxels} voxels, more than the limit of {max_voxels}"
        )

    affine_lps = np.eye(4)
    # PixelSpacing is (between rows, between columns): the column gap goes
    # with the row direction cosine (axis i), the row gap with axis j.
    affine_lps[:3, 0] = row_cos * pixel_spacing[1]
    affine_lps[:3, 1] = col_cos * pixel_spacing[0]
    affine_lps[:3, 2] = _slice_step_lps(slices, normal)
    affine_lps[:3, 3] = slices[0].position_lps
    notes = _geometry_notes(slices, affine_lps[:3, 2], normal)

    if _is_colour(first):
        # Frames are (rows, columns, 3) = (j, i, rgb): stack along k, then (i, j, k, rgb).
        colour = np.stack([_pixels(s) for s in slices], axis=2)
        return Volume(
            np.ascontiguousarray(colour.transpose(1, 0, 2, 3)),
            LPS_TO_RAS @ affine_lps,
            str(first.get("Modality", "")) or series.modality,
            str(first.get("SeriesDescription", "")) or series.description,
            tuple(notes),
        )
    # Stored frames are (rows, columns) = (j, i); stack along k then swap.
    stacked = np.stack([_pixels(s) for s in slices], axis=-1)
    data = _smallest_dtype(np.ascontiguousarray(stacked.transpose(1, 0, 2)))
    if str(first.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        # Widen first: max + min - value can overflow int16.
        wide = data.astype(np.float64 if data.dtype.kind == "f" else np.int64)
        data = _smallest_dtype(wide.max() + wide.min() - wide)
    description = str(first.get("SeriesDescription", "")) or series.description
    modality = str(first.get("Modality", "")) or series.modality
    logger.debug("read DICOM series of %d frames, shape %s", len(slices), data.shape)
    return Volume(data, LPS_TO_RAS @ affine_lps, modality, description, tuple(notes))
