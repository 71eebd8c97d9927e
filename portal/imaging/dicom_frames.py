"""Per-frame geometry and rescale of DICOM images, single- and multi-frame.

Enhanced multi-frame objects (PS3.3 C.7.6.16) keep what single-frame images
store at the top level in functional groups: a ``PlanePositionSequence``,
``PlaneOrientationSequence``, ``PixelMeasuresSequence`` and
``PixelValueTransformationSequence`` either per frame (in the
``PerFrameFunctionalGroupsSequence`` item of that frame) or once for all
frames (in the ``SharedFunctionalGroupsSequence``). This module flattens both
layouts, and classic single-frame files, into one :class:`FrameInfo` per
frame so that the series reader treats every frame like a slice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from portal.imaging.errors import ImagingError

__all__ = ["FrameInfo", "float_list", "frame_infos", "is_multiframe"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameInfo:
    """Where one 2-D frame sits and how its stored values are scaled.

    Parameters
    ----------
    index : int or None
        Frame number (0-based) in a multi-frame file, ``None`` for a classic
        single-frame file.
    position_lps : numpy.ndarray
        ImagePositionPatient of the first transmitted pixel, LPS mm.
    orientation : numpy.ndarray
        The six ImageOrientationPatient direction cosines (row, then column).
    pixel_spacing_mm : numpy.ndarray
        PixelSpacing (between rows, between columns) in mm.
    rescale : tuple of float or None
        ``(slope, intercept)`` from a functional group, or ``None`` to use the
        top-level modality LUT attributes.
    assumed : bool
        True when the file has no plane position and the geometry above is
        the axis-aligned stack assumed for it.
    """

    index: int | None
    position_lps: np.ndarray
    orientation: np.ndarray
    pixel_spacing_mm: np.ndarray
    rescale: tuple[float, float] | None = None
    assumed: bool = False


def float_list(ds: Dataset, keyword: str, count: int, path: Path) -> np.ndarray:
    """``count`` finite floats of ``ds.<keyword>``, else :class:`ImagingError`."""
    value = ds.get(keyword)
    try:
        array = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ImagingError(path, f"missing or unreadable {keyword}") from exc
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise ImagingError(path, f"{keyword} must hold {count} numbers, got {value!r}")
    return array


def is_multiframe(ds: Dataset) -> bool:
    """True for enhanced objects and any file declaring more than one frame."""
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n_frames = 1
    return n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds


def _group_item(groups: list[Dataset], sequence: str) -> Dataset | None:
    """First item of ``sequence`` in the first group that has it (per-frame first)."""
    for group in groups:
        seq = group.get(sequence)
        if seq:
            return seq[0]
    return None


def _rescale(item: Dataset | None, path: Path) -> tuple[float, float] | None:
    if item is None or "RescaleSlope" not in item:
        return None
    try:
        slope, intercept = float(item.RescaleSlope), float(item.get("RescaleIntercept", 0.0))
    except (TypeError, ValueError) as exc:
        raise ImagingError(path, "unreadable RescaleSlope or RescaleIntercept") from exc
    return slope, intercept


def _fallback_pixel_spacing(ds: Dataset, path: Path) -> np.ndarray:
    """PixelSpacing, else ImagerPixelSpacing, else 1 mm (row gap, column gap).

    Projection radiographs (CR, DX) often give only ImagerPixelSpacing, the
    spacing at the detector; some write PixelSpacing as ``0\\0``, which would
    make the affine singular, so zeros count as absent. GDCM (SimpleITK) and
    dcm2niix make the same choices.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if ds.get(keyword):
            spacing = float_list(ds, keyword, 2, path)
            if np.all(spacing > 0):
                return spacing
    return np.ones(2)


def _fallback_geometry(ds: Dataset, path: Path, n_frames: int) -> list[FrameInfo]:
    """Frames of a file without any plane position: a plain stack at the origin."""
    # Some legacy multi-frame MR, secondary captures and anonymised test
    # data carry no geometry; SimpleITK and dcm2niix then also assume an axis-aligned
    # stack at the origin. SpacingBetweenSlices is the one gap DICOM gives.
    logger.info("%s has no plane position; assuming an axis-aligned stack at 0", path)
    spacing = _fallback_pixel_spacing(ds, path)
    gap = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0)
    orientation = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return [
        FrameInfo(
            n if n_frames > 1 else None,
            np.array([0.0, 0.0, abs(gap) * n]),
            orientation,
            spacing,
            assumed=True,
        )
        for n in range(n_frames)
    ]


def frame_infos(ds: Dataset, path: Path) -> list[FrameInfo]:
    """Geometry of every frame of ``ds``, in stored frame order.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A single-frame or (enhanced or legacy) multi-frame image.
    path : pathlib.Path
        The file, named in errors.

    Returns
    -------
    list of FrameInfo
        One per frame; a single ``index=None`` entry for single-frame files.

    Raises
    ------
    ImagingError
        If position, orientation or pixel spacing are missing or malformed,
        or the per-frame groups do not match NumberOfFrames.
    """
    if not is_multiframe(ds):
        if "ImagePositionPatient" not in ds and "ImageOrientationPatient" not in ds:
            return _fallback_geometry(ds, path, 1)
        return [
            FrameInfo(
                None,
                float_list(ds, "ImagePositionPatient", 3, path),
                float_list(ds, "ImageOrientationPatient", 6, path),
                float_list(ds, "PixelSpacing", 2, path),
            )
        ]
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    shared = list(ds.get("SharedFunctionalGroupsSequence") or [])
    if per_frame and len(per_frame) != n_frames:
        raise ImagingError(
            path,
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} frames",
        )
    if not per_frame and "ImagePositionPatient" not in ds:
        if _group_item(shared, "PlanePositionSequence") is None:
            return _fallback_geometry(ds, path, n_frames)
    frames = []
    for n in range(n_frames):
        groups = ([per_frame[n]] if per_frame else []) + shared + [ds]
        position = _group_item(groups, "PlanePositionSequence") or ds
        orientation = _group_item(groups, "PlaneOrientationSequence") or ds
        measures = _group_item(groups, "PixelMeasuresSequence") or ds
        frames.append(
            FrameInfo(
                n,
                float_list(position, "ImagePositionPatient", 3, path),
                float_list(orientation, "ImageOrientationPatient", 6, path),
                float_list(measures, "PixelSpacing", 2, path),
                _rescale(_group_item(groups, "PixelValueTransformationSequence"), path),
            )
        )
    return frames
