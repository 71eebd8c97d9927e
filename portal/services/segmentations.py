"""Stored segmentations read back at full resolution: label files and Dice between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from portal.db.models import Segmentation, Study
from portal.imaging.dicom_seg import is_dicom_seg, read_dicom_seg
from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label
from portal.imaging.mgh import read_mgh
from portal.imaging.nifti import read_label_nifti
from portal.imaging.nrrd import read_nrrd, read_seg_nrrd
from portal.imaging.resample import resample_labels
from portal.services.discovery import volume_kind
from portal.services.errors import InvalidInput

# A label map of the largest study we import; reading back never allocates more.
MAX_VOXELS = 1024**3


def read_label_file(path: Path, max_voxels: int) -> tuple[np.ndarray, np.ndarray, list[Label]]:
    """Read a label map file (NIfTI, NRRD, seg.nrrd, MGH) of any stored segmentation.

    Returns
    -------
    tuple
        The labels as uint16 in (i, j, k) voxel order, the file's RAS affine, and the
        file's own label table (empty when it has none).

    Raises
    ------
    ImagingError
        Naming the file, if it cannot be read or does not hold whole numbers 0-65535.
    """
    kind = volume_kind(path)
    if kind == "seg":
        return read_seg_nrrd(path, max_voxels=max_voxels)
    if kind == "nifti":
        labels, affine = read_label_nifti(path, max_voxels=max_voxels)
        return labels, affine, []
    volume = (
        read_mgh(path, max_voxels=max_voxels)
        if kind == "mgh"
        else read_nrrd(path, max_voxels=max_voxels)
    )
    data = volume.data
    if data.size and (
        not np.all(np.isfinite(data))
        or data.min() < 0
        or data.max() > 65535
        or not np.array_equal(data, np.round(data))
    ):
        raise ImagingError(path, "a label map must hold whole numbers from 0 to 65535")
    return data.astype(np.uint16), volume.affine_ras, []


def label_map(store_dir: Path, study: Study, segmentation: Segmentation) -> np.ndarray:
    """A stored segmentation as uint16 labels on its study's voxel grid, (i, j, k) order.

    Label maps stored on another grid (imported with resampling) are resampled again
    with nearest neighbour, as at import.
    """
    path = store_dir / segmentation.file
    affine = np.asarray(study.affine_ras, dtype=float)
    if is_dicom_seg(path):
        labels, _table, _notes = read_dicom_seg(path, affine, study.shape, max_voxels=MAX_VOXELS)
        return labels.astype(np.uint16)
    labels, label_affine, _ = read_label_file(path, MAX_VOXELS)
    if labels.shape != study.shape or not np.allclose(label_affine, affine, atol=1e-3):
        labels = resample_labels(labels, label_affine, affine, study.shape)
    return labels


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two label maps over all labels: 2|A∩B| / (|A| + |B|).

    A voxel counts as overlap when both maps give it the same non-zero label, so a
    region labelled differently by the two readers is disagreement. Two empty maps
    agree perfectly (1.0).
    """
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    fg_a = a != 0
    fg_b = b != 0
    total = int(fg_a.sum()) + int(fg_b.sum())
    if total == 0:
        return 1.0
    both = int(np.count_nonzero(fg_a & (a == b)))
    return 2.0 * both / total


def dice_between(session: Session, store_dir: Path, seg_a: int, seg_b: int) -> float:
    """Dice between two stored segmentations of one study (see `dice`)."""
    a = session.get(Segmentation, seg_a)
    b = session.get(Segmentation, seg_b)
    if a is None or b is None or a.study_id != b.study_id:
        raise InvalidInput("Dice needs two segmentations of the same study")
    study = a.study
    return dice(label_map(store_dir, study, a), label_map(store_dir, study, b))


__all__ = ["Label", "dice", "dice_between", "label_map", "read_label_file"]
