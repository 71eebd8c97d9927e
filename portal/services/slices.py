"""Full-resolution 2D slices on demand, on the grid of a study's preview.

The viewer shows a strided preview (at most ``preview_max_dim`` voxels per axis); when a
reviewer stops on a slice it fetches that slice at full resolution. Reading the original
for each request would re-read a whole DICOM series, so the first request keeps the
study's closest-canonical volume in real units, and each segmentation's canonical label
map, as ``.npy`` files in the study's preview folder (``full/values.npy``,
``full/labels-<segmentation id>.npy``). Later requests memory-map them and copy out one
slice. Arrays are stored in Fortran order (``k`` slowest) so an axial slice is one
contiguous block and a coronal one a run per ``k``.

Files are written whole under a temporary name and renamed into place: two workers
making one at once both write whole files and one wins.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from portal.db.models import Segmentation, Study
from portal.imaging.labels import labels_to_rgba
from portal.imaging.slices import (
    CanonicalGrid,
    SliceAxis,
    canonical_grid,
    slice_origin_mm,
    take_slice,
)
from portal.imaging.values import real_values
from portal.imaging.volume import reorient_labels_like, to_closest_canonical
from portal.imaging.vti import vti_bytes
from portal.services import previews
from portal.services.auth import Principal
from portal.services.catalog import open_study
from portal.services.errors import InvalidInput, NotFound
from portal.services.originals import read_stored_image
from portal.services.segmentations import label_map

__all__ = [
    "SliceKind",
    "SliceTarget",
    "full_labels",
    "full_values",
    "full_values_file",
    "open_slice",
    "slice_vti",
]

log = logging.getLogger(__name__)


class SliceKind(enum.StrEnum):
    """What a slice holds: real-unit values, or the RGBA colours of a segmentation."""

    VALUES = "values"
    LABELS = "labels"


@dataclass(frozen=True)
class SliceTarget:
    """A slice a principal may fetch, checked, with the ETag of its bytes.

    Parameters
    ----------
    study : Study
        The study, visible to the principal.
    segmentation : Segmentation or None
        For a label slice, one of the study's own segmentations.
    kind : SliceKind
        Values or labels.
    axis : SliceAxis
        Which canonical axis is held.
    index : int
        Full-resolution index along it, within the grid.
    grid : CanonicalGrid
        The study's full-resolution canonical grid.
    etag : str
        Names the bytes: study uid, axis, index, kind and segmentation.
    """

    study: Study
    segmentation: Segmentation | None
    kind: SliceKind
    axis: SliceAxis
    index: int
    grid: CanonicalGrid
    etag: str


def _etag(uid: str, axis: SliceAxis, index: int, kind: SliceKind, segmentation: int) -> str:
    key = f"{uid}/{axis.value}/{index}/{kind.value}/{segmentation}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _segmentation(session: Session, study: Study, segmentation_id: int | None) -> Segmentation:
    if segmentation_id is None:
        if not study.segmentations:
            raise NotFound(f"study {study.id} has no segmentation")
        return study.segmentations[0]
    segmentation = session.get(Segmentation, segmentation_id)
    if segmentation is None or segmentation.study_id != study.id:
        raise NotFound(f"study {study.id} has no segmentation {segmentation_id}")
    return segmentation


def open_slice(
    session: Session,
    principal: Principal,
    preview_dir: Path,
    study_id: int,
    axis: str,
    index: int,
    kind: SliceKind,
    segmentation_id: int | None = None,
) -> SliceTarget:
    """Check that `principal` may see the study, then that the slice exists.

    Access comes first (audited as ``study.view`` via ``slice:<kind>``), so a study one
    may not see answers like a missing one whatever else is asked.

    Parameters
    ----------
    axis : str
        ``axial``, ``coronal`` or ``sagittal``.
    index : int
        Full-resolution index along the axis's canonical dimension.
    segmentation_id : int, optional
        For label slices; the study's first segmentation when not given.

    Raises
    ------
    NotFound
        If the study is not visible, is a colour image, has no such axis, index or
        segmentation (a segmentation of another study answers like a missing one).
    """
    study = open_study(session, principal, study_id, f"slice:{kind.value}")
    try:
        slice_axis = SliceAxis(axis)
    except ValueError as exc:
        choices = ", ".join(a.value for a in SliceAxis)
        raise NotFound(f"no slice axis {axis!r} (one of {choices})") from exc
    if previews.read_meta(preview_dir, study).get("rgb"):
        raise NotFound(f"study {study.id} is a colour image: it has no value or label slices")
    grid = canonical_grid(study.shape, np.asarray(study.affine_ras, dtype=float))
    size = grid.shape[slice_axis.dim]
    if not 0 <= index < size:
        raise NotFound(f"study {study.id} has no {slice_axis.value} slice {index} (0..{size - 1})")
    segmentation = None
    if kind is SliceKind.LABELS:
        segmentation = _segmentation(session, study, segmentation_id)
    elif segmentation_id is not None:
        raise InvalidInput("segmentation is only for label slices")
    seg_key = segmentation.id if segmentation is not None else 0
    return SliceTarget(
        study=study,
        segmentation=segmentation,
        kind=kind,
        axis=slice_axis,
        index=index,
        grid=grid,
        etag=_etag(study.uid, slice_axis, index, kind, seg_key),
    )


def slice_vti(target: SliceTarget, store_dir: Path, preview_dir: Path, max_voxels: int) -> bytes:
    """The ``.vti`` of a checked slice (not compressed): one voxel thick along its axis.

    Values are int16 or float32 in real units, exactly as ``values.vti`` holds them;
    labels are RGBA uint8 in the segmentation's colours, exactly as its ``labels.vti``.
    Spacing is the full-resolution spacing; the origin is the world position of the
    slice's voxel ``(0, 0, 0)``.
    """
    if target.kind is SliceKind.VALUES:
        values = full_values(target.study, store_dir, preview_dir, max_voxels)
        array = take_slice(values, target.axis, target.index)
    else:
        assert target.segmentation is not None  # open_slice gives label slices one
        labels = full_labels(target.study, target.segmentation, store_dir, preview_dir)
        cut = take_slice(labels, target.axis, target.index)
        table = previews.segmentation_table(target.segmentation, cut)
        # Coloured in VTK's (k, j, i) memory order and handed over as an (i, j, k) view,
        # so vti_bytes finds it contiguous and copies nothing.
        array = labels_to_rgba(cut.T, table).transpose(2, 1, 0, 3)
    origin = slice_origin_mm(target.grid, target.axis, target.index)
    return vti_bytes(array, target.grid.spacing_mm, origin)


def _full_dir(preview_dir: Path, study: Study) -> Path:
    return preview_dir / study.uid / "full"


def full_values_file(preview_dir: Path, study: Study) -> Path:
    """Where the study's full-resolution real-unit volume is kept (made on first use)."""
    return _full_dir(preview_dir, study) / "values.npy"


def _full_labels_file(preview_dir: Path, study: Study, segmentation: Segmentation) -> Path:
    return _full_dir(preview_dir, study) / f"labels-{int(segmentation.id)}.npy"


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write an array whole under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            # k slowest: an axial slice is one contiguous block of the file.
            np.save(out, np.asfortranarray(array), allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load(path: Path, grid: CanonicalGrid, study: Study) -> np.ndarray | None:
    """The kept array memory-mapped, or None when it is not there yet."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    if tuple(array.shape) != grid.shape:
        raise RuntimeError(
            f"study {study.id}: {path.name} has shape {array.shape}, "
            f"the study's canonical grid is {grid.shape}"
        )
    return array


def _grid(study: Study) -> CanonicalGrid:
    return canonical_grid(study.shape, np.asarray(study.affine_ras, dtype=float))


def full_values(study: Study, store_dir: Path, preview_dir: Path, max_voxels: int) -> np.ndarray:
    """The study's closest-canonical volume in real units, memory-mapped, made on first use.

    The same values as ``values.vti`` at every voxel it holds: the modality rescale
    applied, a MONOCHROME1 inversion undone with the whole volume's range, int16 when
    all are whole numbers within it, else float32 (:func:`~portal.imaging.values.real_values`).

    Returns
    -------
    numpy.ndarray
        Read-only memory map, canonical ``(i, j, k)``.

    Raises
    ------
    NotFound
        If the stored original is gone, or is a colour image.
    """
    grid = _grid(study)
    path = full_values_file(preview_dir, study)
    kept = _load(path, grid, study)
    if kept is not None:
        return kept
    volume, header = read_stored_image(study, store_dir, max_voxels)
    if volume.is_rgb:
        raise NotFound(f"study {study.id} is a colour image: it has no values")
    whole = previews.volume_range(volume.data) if header.monochrome1 else None
    # Readers give (i, j, k) with k slowest (Fortran order), as it is kept: made on the
    # transpose, compact_values' C-order copy is that same layout, not a transposition.
    canonical = to_closest_canonical(volume).data
    values = real_values(canonical.T, monochrome1_range=whole).T
    if values.shape != grid.shape:
        raise RuntimeError(
            f"study {study.id}: the stored original reads as canonical {values.shape}, "
            f"the catalog's grid is {grid.shape}"
        )
    _save_npy(path, values)
    log.info("kept the full-resolution values of study %s", study.id)
    kept = _load(path, grid, study)
    assert kept is not None  # just written
    return kept


def full_labels(
    study: Study, segmentation: Segmentation, store_dir: Path, preview_dir: Path
) -> np.ndarray:
    """A segmentation's label map on the study's closest-canonical grid, memory-mapped,
    made on first use.

    Reoriented from the study's affine exactly as its image is, so label voxel
    ``(i, j, k)`` is image voxel ``(i, j, k)``. uint8 when every value fits, else uint16.

    Returns
    -------
    numpy.ndarray
        Read-only memory map, canonical ``(i, j, k)``.
    """
    grid = _grid(study)
    path = _full_labels_file(preview_dir, study, segmentation)
    kept = _load(path, grid, study)
    if kept is not None:
        return kept
    stored = label_map(store_dir, study, segmentation)
    labels = reorient_labels_like(stored, np.asarray(study.affine_ras, dtype=float))
    small = labels.size == 0 or int(labels.max()) < 256
    _save_npy(path, labels.astype(np.uint8 if small else np.uint16))
    log.info("kept the full-resolution labels of segmentation %s", segmentation.id)
    kept = _load(path, grid, study)
    assert kept is not None
    return kept
