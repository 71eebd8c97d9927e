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
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from portal.imaging.dicom_frames import FrameInfo, frame_infos
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.errors import ImagingError
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

# What pydicom raises on files that are not DICOM, truncated or malformed.
_READ_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, KeyError, struct.error)


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


def _skip_reason(ds: Dataset) -> str | None:
    modality = str(ds.get("Modality", ""))
    if modality in NON_IMAGE_MODALITIES:
        return f"modality {modality} is not an image"
    if "Rows" not in ds or "Columns" not in ds:
        return "no image pixel module (not an image object)"
    if not ds.get("SeriesInstanceUID"):
        return "no SeriesInstanceUID"
    return None


def find_dicom_series(paths: Iterable[Path]) -> list[DicomSeries]:
    """Group the DICOM image files under ``paths`` by SeriesInstanceUID.

    Only headers are read. Files that are not DICOM (no ``DICM`` preamble)
    and DICOM objects that are not images (SR, RT structure sets,
    presentation states, segmentations, DICOMDIR, ...) are skipped and
    logged at INFO without any patient data.

    Parameters
    ----------
    paths : iterable of pathlib.Path
        Files and folders; folders are searched recursively.

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
        except _READ_ERRORS as exc:
            logger.info("skipping %s: not a readable DICOM file (%s)", path, type(exc).__name__)
            continue
        reason = _skip_reason(ds)
        if reason is not None:
            logger.info("skipping %s: %s", path, reason)
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
        except _READ_ERRORS as exc:
            raise ImagingError(path, f"not a readable DICOM file ({exc})") from exc
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
    if stored.ndim != 2:
        raise ImagingError(s.path, f"expected one 2-D monochrome frame, got {stored.shape}")
    if s.frame.rescale is not None:
        slope, intercept = s.frame.rescale
        return stored.astype(np.float64) * slope + intercept
    return np.asarray(apply_modality_lut(stored, s.ds))


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
    row_cos, col_cos = iop[:3], iop[3:]
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
    return Volume(data, LPS_TO_RAS @ affine_lps, modality, description)
