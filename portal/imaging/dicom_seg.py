"""Read DICOM Segmentation objects (SEG) onto the grid of the image they segment.

A DICOM SEG (PS3.3 A.51, C.8.20) is one multi-frame object. Each frame is a
2-D mask placed in the patient by its own ``PlanePositionSequence``,
``PlaneOrientationSequence`` and ``PixelMeasuresSequence`` (per frame or
shared), and, for ``BINARY`` and ``FRACTIONAL`` segmentations, belongs to one
segment named by its ``SegmentIdentificationSequence``. ``LABELMAP``
segmentations (Label Map Segmentation Storage) store segment numbers as pixel
values instead, all segments in one frame.

Frames are placed by geometry only: every frame's pixel grid is mapped
through the inverse of the image affine and must land on the image's voxel
centres (within 1e-3 voxel), with each pixel step being exactly one voxel
along one image axis. Frame order, ``DimensionIndexValues`` and references to
source SOP instances are never trusted for placement, so a SEG covering a
few slices, or with frames in any order, still lands on the right ``k``.
A SEG whose grid differs from the image's (other pixel spacing, orientation,
half-voxel shift, or a field of view reaching outside the image) is refused.

Header checks (SOP class, declared size against ``max_voxels``, segments,
geometry) all happen before any pixel data is read; every failure is an
:class:`~portal.imaging.errors.ImagingError` naming the file.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import SegmentationStorage

from portal.imaging.dicom_frames import frame_infos
from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label, label_color
from portal.imaging.nifti import DEFAULT_MAX_VOXELS, MAX_LABEL_VALUE
from portal.imaging.volume import LPS_TO_RAS

__all__ = [
    "SEGMENTATION_SOP_CLASS_UIDS",
    "SegmentationType",
    "is_dicom_seg",
    "read_dicom_seg",
    "referenced_instance_uids",
    "referenced_series_uid",
]

logger = logging.getLogger(__name__)

#: Label Map Segmentation Storage (Supplement 243); pydicom 3.0 has no name for it yet.
LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"

#: SOP classes read by this module: Segmentation and Label Map Segmentation Storage.
SEGMENTATION_SOP_CLASS_UIDS = frozenset({str(SegmentationStorage), LABEL_MAP_SEGMENTATION_STORAGE})

# How far (in image voxels) a SEG pixel may sit from an image voxel centre.
_VOXEL_ATOL = 1e-3

# Values longer than this are read from the file only when used (the pixel data).
_DEFER_BYTES = 64 * 1024

# What pydicom raises on files that are not DICOM, truncated or malformed.
_READ_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, KeyError, struct.error)


class SegmentationType(enum.StrEnum):
    """Values of the SegmentationType attribute (0062,0001)."""

    BINARY = "BINARY"
    FRACTIONAL = "FRACTIONAL"
    LABELMAP = "LABELMAP"


@dataclass(frozen=True)
class _Placement:
    """Where one SEG frame lands in the image: pixel ``(r, c)`` -> voxel ``origin + c*u + r*v``.

    ``u_axis``/``v_axis`` are the image axes a column/row step moves along,
    ``u_sign``/``v_sign`` the direction (+1 or -1).
    """

    origin: tuple[int, int, int]
    u_axis: int
    u_sign: int
    v_axis: int
    v_sign: int


# --------------------------------------------------------------------------- headers


def is_dicom_seg(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM Segmentation, reading only its SOP class.

    Parameters
    ----------
    path : str or os.PathLike
        Any file; missing, unreadable and non-DICOM files give ``False``.

    Returns
    -------
    bool
        True for Segmentation Storage and Label Map Segmentation Storage.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> is_dicom_seg(get_testdata_file("CT_small.dcm")), is_dicom_seg("/no/such/file.dcm")
    (False, False)
    """
    try:
        ds = pydicom.dcmread(
            path, specific_tags=["SOPClassUID"], stop_before_pixels=True, force=False
        )
    except (*_READ_ERRORS, TypeError):
        return False
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or getattr(meta, "MediaStorageSOPClassUID", ""))
    return sop_class in SEGMENTATION_SOP_CLASS_UIDS


def _read_header(path: Path) -> Dataset:
    """The SEG's dataset with its pixel data not yet read, checked to be a SEG."""
    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    try:
        # Large values (the pixel data) are only read when first accessed,
        # so everything can be checked before pixels are loaded or decoded.
        ds = pydicom.dcmread(path, defer_size=_DEFER_BYTES, force=False)
    except _READ_ERRORS as exc:
        raise ImagingError(path, f"not a readable DICOM file ({exc})") from exc
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or getattr(meta, "MediaStorageSOPClassUID", ""))
    if sop_class not in SEGMENTATION_SOP_CLASS_UIDS:
        name = getattr(ds.get("SOPClassUID"), "name", "") or "no SOP class"
        raise ImagingError(path, f"not a DICOM Segmentation ({name}, {sop_class or '-'})")
    if "PixelData" not in ds:
        # pydicom stops quietly where a truncated file ends, keeping what it
        # read; a SEG always ends with its pixel data.
        raise ImagingError(path, "the file ends before its pixel data (truncated?)")
    return ds


def _source_references(ds: Dataset) -> list[Dataset]:
    """Items referencing source images: top-level and per-frame/shared derivation ones."""
    items = list(ds.get("SourceImageSequence") or [])
    groups = list(ds.get("SharedFunctionalGroupsSequence") or [])
    groups += list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    for group in groups:
        for derivation in group.get("DerivationImageSequence") or []:
            items.extend(derivation.get("SourceImageSequence") or [])
    return items


def referenced_instance_uids(path: str | os.PathLike[str]) -> frozenset[str]:
    """SOPInstanceUIDs of the source images a SEG references.

    Collected from ``ReferencedSeriesSequence`` and from every
    ``SourceImageSequence`` (top level and in the functional groups'
    ``DerivationImageSequence``). Useful to find the source series of a SEG
    that names no series, by matching these against the instances of the
    series on hand.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM SEG; only its header is read.

    Returns
    -------
    frozenset of str
        Possibly empty.

    Raises
    ------
    ImagingError
        If the file is missing, unreadable or not a SEG.
    """
    ds = _read_header(Path(path))
    uids = {
        str(item.get("ReferencedSOPInstanceUID", ""))
        for series in ds.get("ReferencedSeriesSequence") or []
        for item in series.get("ReferencedInstanceSequence") or []
    }
    uids.update(str(item.get("ReferencedSOPInstanceUID", "")) for item in _source_references(ds))
    return frozenset(uids - {""})


def referenced_series_uid(path: str | os.PathLike[str]) -> str:
    """SeriesInstanceUID of the image series a SEG was made on.

    Taken from ``ReferencedSeriesSequence`` (Common Instance Reference
    module). When it lists several series, the one holding the SEG's source
    images (``SourceImageSequence`` / ``DerivationImageSequence``) is chosen.
    Without that sequence, a ``SeriesInstanceUID`` written next to the source
    image references is used (not standard, but some writers add it);
    standard source references name SOP instances only, and
    :func:`referenced_instance_uids` gives those.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM SEG; only its header is read.

    Returns
    -------
    str
        The SeriesInstanceUID.

    Raises
    ------
    ImagingError
        If the file is missing, unreadable or not a SEG, references no series,
        or references several series without saying which one it segments.
    """
    path = Path(path)
    ds = _read_header(path)
    sources = _source_references(ds)
    by_series: dict[str, set[str]] = {}
    for item in ds.get("ReferencedSeriesSequence") or []:
        uid = str(item.get("SeriesInstanceUID", "") or "")
        if uid:
            by_series.setdefault(uid, set()).update(
                str(ref.get("ReferencedSOPInstanceUID", ""))
                for ref in item.get("ReferencedInstanceSequence") or []
            )
    if len(by_series) > 1:
        # A SEG may reference extra series (e.g. a registered one); the one it
        # segments is the one its frames were derived from.
        source_uids = {str(item.get("ReferencedSOPInstanceUID", "")) for item in sources}
        holding = [uid for uid, inst in by_series.items() if inst & source_uids]
        if len(holding) != 1:
            raise ImagingError(
                path,
                f"ReferencedSeriesSequence lists {len(by_series)} series and the source image "
                f"references do not single one out ({len(holding)} hold source images)",
            )
        return holding[0]
    if by_series:
        return next(iter(by_series))
    found = {str(item.SeriesInstanceUID) for item in sources if item.get("SeriesInstanceUID")}
    if len(found) == 1:
        return found.pop()
    raise ImagingError(
        path,
        "no ReferencedSeriesSequence; the SEG does not name the series it segments"
        + (f" ({len(found)} series in its source image references)" if found else ""),
    )


# --------------------------------------------------------------------------- segments


def _cielab_to_rgb(value: Sequence[int]) -> tuple[int, int, int]:
    """sRGB 0-255 of a RecommendedDisplayCIELabValue (three 16-bit integers)."""
    from highdicom.color import CIELabColor

    # clip=True: CIELab covers colours sRGB cannot show; take the nearest one.
    r, g, b = CIELabColor.from_dicom_value([int(v) for v in value]).to_rgb(clip=True)
    # to_rgb returns unrounded floats for the components it clips.
    return (
        min(255, max(0, round(r))),
        min(255, max(0, round(g))),
        min(255, max(0, round(b))),
    )


def _palette_colors(path: Path, ds: Dataset, values: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Colours of label values from a LABELMAP's Palette Color LUT (empty without one)."""
    if str(ds.get("PhotometricInterpretation", "")) != "PALETTE COLOR":
        return {}
    from highdicom import PaletteColorLUT

    try:
        luts = [PaletteColorLUT.extract_from_dataset(ds, color=c) for c in ("red", "green", "blue")]
        channels = [
            (np.asarray(lut.lut_data), int(lut.first_mapped_value), int(lut.bits_per_entry))
            for lut in luts
        ]
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        logger.info("%s: unusable palette colour lookup table (%s)", path, exc)
        return {}
    colors = {}
    for value in values:
        rgb = []
        for data, first, bits in channels:
            # Values outside the table take its first or last entry (PS3.3 C.7.6.3.1.5).
            level = int(data[min(max(value - first, 0), len(data) - 1)])
            rgb.append(level if bits == 8 else round(level * 255 / 65535))
        colors[value] = tuple(rgb)
    return colors


def _label_table(path: Path, ds: Dataset, seg_type: SegmentationType) -> list[Label]:
    """One Label per item of SegmentSequence, sorted by SegmentNumber.

    Colour: RecommendedDisplayCIELabValue, else the LABELMAP's palette colour
    LUT entry, else the portal palette colour of the value.
    """
    segments: dict[int, Dataset] = {}
    for item in ds.get("SegmentSequence") or []:
        try:
            number = int(item.SegmentNumber)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ImagingError(path, "a SegmentSequence item has no valid SegmentNumber") from exc
        if number == 0 and seg_type is SegmentationType.LABELMAP:
            continue  # a LABELMAP describes its background as segment 0
        if not 1 <= number <= MAX_LABEL_VALUE:
            raise ImagingError(path, f"SegmentNumber {number} is outside 1..{MAX_LABEL_VALUE}")
        if number in segments:
            raise ImagingError(path, f"SegmentNumber {number} is described twice")
        segments[number] = item
    if not segments:
        raise ImagingError(path, "SegmentSequence is missing or describes no segment")
    palette = _palette_colors(path, ds, segments)
    table = []
    for number in sorted(segments):
        item = segments[number]
        name = str(item.get("SegmentLabel", "") or "") or f"segment {number}"
        rgb = palette.get(number, label_color(number))
        color = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        lab_value = item.get("RecommendedDisplayCIELabValue")
        if lab_value is not None:
            try:
                color = _cielab_to_rgb(lab_value)
            except (TypeError, ValueError) as exc:
                # A bad display colour is no reason to refuse the masks.
                logger.info("%s: segment %d has an unusable colour (%s)", path, number, exc)
        table.append(Label(number, name, color))
    return table


def _segmentation_type(path: Path, ds: Dataset) -> SegmentationType:
    value = str(ds.get("SegmentationType", "") or "")
    try:
        seg_type = SegmentationType(value)
    except ValueError:
        raise ImagingError(path, f"unsupported SegmentationType {value!r}") from None
    return seg_type


def _max_fractional_value(path: Path, ds: Dataset) -> int:
    try:
        value = int(ds.MaximumFractionalValue)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImagingError(path, "FRACTIONAL segmentation without MaximumFractionalValue") from exc
    if value < 1:
        raise ImagingError(path, f"MaximumFractionalValue must be positive, got {value}")
    return value


def _frame_segment_numbers(path: Path, ds: Dataset, n_frames: int) -> list[int]:
    """ReferencedSegmentNumber of every frame (per-frame item, else the shared one)."""
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    shared = list(ds.get("SharedFunctionalGroupsSequence") or [])
    numbers = []
    for n in range(n_frames):
        # A SEG of a single segment may name it once, in the shared groups.
        items = [
            group.SegmentIdentificationSequence[0]
            for group in (per_frame[n], *shared)
            if group.get("SegmentIdentificationSequence")
        ]
        try:
            numbers.append(int(items[0].ReferencedSegmentNumber))
        except (IndexError, AttributeError, TypeError, ValueError) as exc:
            raise ImagingError(path, f"frame {n + 1} names no ReferencedSegmentNumber") from exc
    return numbers


# --------------------------------------------------------------------------- geometry


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{float(v):.3f}" for v in values) + ")"


def _placements(
    path: Path,
    ds: Dataset,
    n_frames: int,
    rows: int,
    cols: int,
    image_affine_ras: np.ndarray,
    image_shape: tuple[int, int, int],
) -> list[_Placement]:
    """Map every frame's pixel grid onto the image's voxel grid, or refuse."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        raise ImagingError(path, "no PerFrameFunctionalGroupsSequence (frames have no position)")
    frames = frame_infos(ds, path)
    if len(frames) != n_frames:
        raise ImagingError(path, f"{len(frames)} frame positions for {n_frames} frames")
    world_to_voxel = np.linalg.inv(image_affine_ras)
    spacing = np.linalg.norm(image_affine_ras[:3, :3], axis=0)
    corners = np.array([[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]], dtype=float)
    shape = np.array(image_shape)
    placements = []
    for n, frame in enumerate(frames):
        row_cos, col_cos = frame.orientation[:3], frame.orientation[3:]
        # PixelSpacing is (between rows, between columns): a column step goes
        # along the row direction cosine by the column gap, and vice versa.
        frame_lps = np.eye(4)
        frame_lps[:3, 0] = row_cos * frame.pixel_spacing_mm[1]
        frame_lps[:3, 1] = col_cos * frame.pixel_spacing_mm[0]
        frame_lps[:3, 3] = frame.position_lps
        to_voxel = world_to_voxel @ LPS_TO_RAS @ frame_lps
        origin, u, v = to_voxel[:3, 3], to_voxel[:3, 0], to_voxel[:3, 1]
        u_int, v_int = np.rint(u), np.rint(v)
        unit_steps = (
            np.sum(np.abs(u_int)) == 1
            and np.sum(np.abs(v_int)) == 1
            and np.max(np.abs(u_int)) == 1
            and np.max(np.abs(v_int)) == 1
            and np.argmax(np.abs(u_int)) != np.argmax(np.abs(v_int))
        )
        # Pixel offsets from voxel centres are affine in (c, r), so their
        # largest value over the frame is at one of its four corners.
        step_drift = np.outer(corners[:, 0], u - u_int) + np.outer(corners[:, 1], v - v_int)
        if not unit_steps or float(np.max(np.abs(step_drift))) > _VOXEL_ATOL:
            raise ImagingError(
                path,
                f"the SEG grid does not match the image grid: in frame {n + 1} one column "
                f"step moves {_fmt(u)} and one row step {_fmt(v)} image voxels, where each "
                f"must be one voxel along one image axis (SEG pixel spacing "
                f"{frame.pixel_spacing_mm[0]:g} x {frame.pixel_spacing_mm[1]:g} mm, "
                f"row direction {_fmt(row_cos)} LPS; image voxel size "
                f"{spacing[0]:g} x {spacing[1]:g} x {spacing[2]:g} mm)",
            )
        origin_int = np.rint(origin)
        offsets = (origin - origin_int) + step_drift
        worst = float(np.max(np.abs(offsets)))
        if worst > _VOXEL_ATOL:
            raise ImagingError(
                path,
                f"the SEG grid does not match the image grid: frame {n + 1} is {worst:.4g} "
                f"voxels off the image's voxel centres (its first pixel is at image voxel "
                f"{_fmt(origin)}; tolerance {_VOXEL_ATOL:g} voxel)",
            )
        ends = origin_int + np.outer(corners[:, 0], u_int) + np.outer(corners[:, 1], v_int)
        low, high = ends.min(axis=0).astype(int), ends.max(axis=0).astype(int)
        if np.any(low < 0) or np.any(high >= shape):
            span = ", ".join(f"{a} {lo}..{hi}" for a, lo, hi in zip("ijk", low, high, strict=True))
            raise ImagingError(
                path,
                f"the SEG grid does not match the image grid: frame {n + 1} covers image "
                f"voxels {span}, outside the image's {' x '.join(map(str, image_shape))} voxels",
            )
        u_axis, v_axis = int(np.argmax(np.abs(u_int))), int(np.argmax(np.abs(v_int)))
        placements.append(
            _Placement(
                (int(origin_int[0]), int(origin_int[1]), int(origin_int[2])),
                u_axis,
                int(u_int[u_axis]),
                v_axis,
                int(v_int[v_axis]),
            )
        )
    return placements


def _axis_slice(start: int, count: int, sign: int) -> slice:
    if sign > 0:
        return slice(start, start + count)
    stop = start - count
    return slice(start, stop if stop >= 0 else None, -1)


def _target(out: np.ndarray, place: _Placement, rows: int, cols: int) -> tuple[np.ndarray, bool]:
    """View of ``out`` a frame lands on, and whether the frame must be transposed."""
    index: list[slice | int] = [place.origin[0], place.origin[1], place.origin[2]]
    index[place.u_axis] = _axis_slice(place.origin[place.u_axis], cols, place.u_sign)
    index[place.v_axis] = _axis_slice(place.origin[place.v_axis], rows, place.v_sign)
    # The view's axes are in image-axis order; the frame is (rows, cols) = (v, u).
    return out[tuple(index)], place.u_axis < place.v_axis


# --------------------------------------------------------------------------- pixels


def _decode_frames(path: Path, ds: Dataset, n_frames: int, rows: int, cols: int) -> np.ndarray:
    """All frames as an array ``(frame, row, column)``, stored values."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_encapsulated:
        bits = int(ds.get("BitsAllocated", 0) or 0)
        expected = math.ceil(rows * cols * n_frames * bits / 8)
        try:
            stored_bytes = len(ds.PixelData)  # reads the deferred value
        except OSError as exc:
            raise ImagingError(path, f"cannot read pixel data ({exc})") from exc
        if stored_bytes < expected:
            raise ImagingError(
                path,
                f"pixel data is truncated: {stored_bytes} of {expected} bytes "
                f"({n_frames} frames of {rows} x {cols} at {bits} bits)",
            )
    try:
        pixels = np.asarray(ds.pixel_array)
    except (RuntimeError, NotImplementedError, ValueError, AttributeError, KeyError) as exc:
        name = getattr(syntax, "name", "") or "unknown transfer syntax"
        raise ImagingError(path, f"cannot decode pixel data ({name}, {syntax}): {exc}") from exc
    if pixels.size != n_frames * rows * cols:
        raise ImagingError(path, f"decoded {pixels.shape}, expected {n_frames} x {rows} x {cols}")
    return pixels.reshape(n_frames, rows, cols)


def _frame_labels(
    path: Path,
    seg_type: SegmentationType,
    stored: np.ndarray,
    segment_number: int,
    max_fractional: int,
    declared: set[int],
) -> np.ndarray:
    """One frame as uint16 label values (segment number where inside, else 0)."""
    if seg_type is SegmentationType.LABELMAP:
        values = stored.astype(np.uint16)
        extra = set(np.unique(values).tolist()) - declared - {0}
        if extra:
            raise ImagingError(path, f"pixel values {sorted(extra)[:5]} name no described segment")
        return values
    if seg_type is SegmentationType.FRACTIONAL:
        # Inside when the fraction is at least one half: 2 * value >= max
        # keeps the comparison in integers.
        inside = 2 * stored.astype(np.int64) >= max_fractional
    else:
        inside = stored != 0
    return inside.astype(np.uint16) * np.uint16(segment_number)


def _check_args(
    image_affine_ras: npt.ArrayLike, image_shape: Sequence[int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    affine = np.asarray(image_affine_ras, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError('Argument "image_affine_ras" must be a finite 4x4 matrix.')
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError('Argument "image_affine_ras" must be invertible.')
    shape = tuple(int(n) for n in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f'Argument "image_shape" must be 3 positive ints, got {image_shape}.')
    return affine, (shape[0], shape[1], shape[2])


def read_dicom_seg(
    path: str | os.PathLike[str],
    image_affine_ras: npt.ArrayLike,
    image_shape: Sequence[int],
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> tuple[np.ndarray, list[Label], list[str]]:
    """Read a DICOM SEG as a label map on the grid of the image it segments.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file (Segmentation or Label Map Segmentation Storage).
    image_affine_ras : array_like
        4x4 voxel ``(i, j, k)`` to RAS+ mm affine of the referenced image, as
        :func:`portal.imaging.dicom.read_dicom_series` returns it
        (``Volume.affine_ras``).
    image_shape : sequence of int
        The image's voxel counts along ``(i, j, k)`` (``Volume.shape``).
    max_voxels : int
        Refuse SEGs whose declared pixel count (Rows x Columns x
        NumberOfFrames, all segments) is larger; checked before any pixel
        data is read.

    Returns
    -------
    labels : numpy.ndarray
        uint16, shape ``image_shape``, in the image's ``(i, j, k)`` voxel
        order; each voxel holds the SegmentNumber of its segment, 0 outside
        all segments. ``BINARY``: non-zero pixels are inside. ``FRACTIONAL``:
        pixels of at least half the MaximumFractionalValue are inside.
        ``LABELMAP``: pixel values are segment numbers. Where segments
        overlap, the highest segment number wins. Image voxels no frame
        covers are 0.
    table : list of Label
        One per described segment (even if it has no voxels), sorted by
        value: value = SegmentNumber, name = SegmentLabel, colour =
        RecommendedDisplayCIELabValue converted to sRGB (clipped to the
        nearest sRGB colour), else the entry of a LABELMAP's palette colour
        LUT, else the portal palette colour of the value. A LABELMAP's
        background description (segment 0) is not a label.
    notes : list of str
        What was changed on the way, for the import log: how many voxels
        were in more than one segment, and the threshold applied to a
        FRACTIONAL segmentation. Empty for a plain non-overlapping BINARY
        or LABELMAP SEG.

    Raises
    ------
    ImagingError
        Naming the file: missing, unreadable or truncated; not a SEG;
        unsupported SegmentationType; larger than ``max_voxels``; missing or
        inconsistent segment descriptions or frame geometry; frames whose
        pixels do not land on the image's voxel centres or fall outside the
        image (the message gives the numbers); undecodable pixel data.
    ValueError
        If ``image_affine_ras`` or ``image_shape`` are malformed.

    Notes
    -----
    The caller pairs the SEG with its image (see
    :func:`referenced_series_uid`); this function does not compare
    FrameOfReferenceUIDs, only geometry.
    """
    path = Path(path)
    affine, shape = _check_args(image_affine_ras, image_shape)
    ds = _read_header(path)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImagingError(path, "missing or invalid Rows, Columns or NumberOfFrames") from exc
    if min(rows, cols, n_frames) < 1:
        raise ImagingError(path, f"invalid size: {n_frames} frames of {rows} x {cols} pixels")
    declared = rows * cols * n_frames
    if declared > max_voxels:
        raise ImagingError(
            path,
            f"declared size {n_frames} frames of {rows} x {cols} pixels is {declared} values, "
            f"more than the limit of {max_voxels}",
        )
    seg_type = _segmentation_type(path, ds)
    table = _label_table(path, ds, seg_type)
    numbers = {lab.value for lab in table}
    max_fractional = 1
    if seg_type is SegmentationType.FRACTIONAL:
        max_fractional = _max_fractional_value(path, ds)
    if seg_type is SegmentationType.LABELMAP:
        frame_segments = [0] * n_frames
    else:
        frame_segments = _frame_segment_numbers(path, ds, n_frames)
        unknown = sorted(set(frame_segments) - numbers)
        if unknown:
            raise ImagingError(path, f"frames reference undescribed segments {unknown[:5]}")
    placements = _placements(path, ds, n_frames, rows, cols, affine, shape)

    pixels = _decode_frames(path, ds, n_frames, rows, cols)
    out = np.zeros(shape, dtype=np.uint16)
    contested: np.ndarray | None = None
    for n, place in enumerate(placements):
        frame = _frame_labels(path, seg_type, pixels[n], frame_segments[n], max_fractional, numbers)
        target, transpose = _target(out, place, rows, cols)
        values = frame.T if transpose else frame
        # Two different segments claiming a voxel: record it, keep the higher
        # number (so the result does not depend on frame order).
        clash = (target != 0) & (values != 0) & (target != values)
        if np.any(clash):
            if contested is None:
                contested = np.zeros(shape, dtype=bool)
            contested_view, _ = _target(contested, place, rows, cols)
            contested_view |= clash
        np.maximum(target, values, out=target)

    notes = []
    if seg_type is SegmentationType.FRACTIONAL:
        fractional_type = str(ds.get("SegmentationFractionalType", "") or "unspecified")
        notes.append(
            f"FRACTIONAL segmentation ({fractional_type}) thresholded at one half: stored "
            f"values of {math.ceil(max_fractional / 2)} or more (of {max_fractional}) are inside"
        )
    if contested is not None:
        notes.append(
            f"{int(np.count_nonzero(contested))} voxels are in more than one segment; "
            "each is labelled with the highest segment number"
        )
    logger.debug(
        "read %s SEG with %d segments from %d frames onto %s", seg_type, len(table), n_frames, shape
    )
    return out, table, notes
