"""A 3-D image on a grid placed in RAS+ world space, and grid helpers.

Conventions used everywhere in :mod:`portal.imaging`:

* voxel arrays are indexed ``(i, j, k)``; for DICOM ``i`` runs along a row
  (column index), ``j`` down the columns (row index) and ``k`` across slices;
* ``affine_ras`` is a 4x4 float64 matrix mapping the voxel index
  ``(i, j, k, 1)`` to RAS+ world millimetres, as in NIfTI and nibabel:
  +x points to the subject's Right, +y Anterior, +z Superior;
* lengths are in millimetres and say so in their names (``spacing_mm``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from nibabel.orientations import aff2axcodes, apply_orientation, inv_ornt_aff, io_orientation

from portal.imaging.errors import ImagingError

__all__ = [
    "LPS_TO_RAS",
    "Volume",
    "check_same_grid",
    "reorient_labels_like",
    "to_closest_canonical",
]

logger = logging.getLogger(__name__)

#: Multiplying a DICOM (LPS) affine on the left by this gives the RAS+ affine,
#: and the other way round.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Orientation array of a grid that already is closest to RAS+: axis n maps to
# world axis n with a positive direction.
_RAS_ORNT = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])


@dataclass(frozen=True)
class Volume:
    """Voxels of one 3-D image and where they sit in the patient.

    Parameters
    ----------
    data : numpy.ndarray
        Voxel values in ``(i, j, k)`` order, 3-D, numeric, with any rescale
        slope and intercept already applied (float32 when the scaling was not
        the identity, else the stored integer dtype). Colour images are
        ``(i, j, k, 3)`` uint8 RGB instead.
    affine_ras : numpy.ndarray
        4x4 float64 matrix from voxel ``(i, j, k)`` to RAS+ millimetres.
    modality : str
        DICOM modality code, for example ``"MR"`` or ``"CT"``.
    description : str
        Series description, or the file stem for NIfTI files.
    notes : tuple of str
        What a reader noticed and the reviewer should know, without it being an
        error (gantry tilt kept in the affine, a file without patient geometry).

    Examples
    --------
    >>> import numpy as np
    >>> vol = Volume(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 2.0, 3.0, 1.0]), "MR", "demo")
    >>> vol.shape, vol.spacing_mm, vol.orientation, vol.dtype
    ((4, 5, 6), (2.0, 2.0, 3.0), 'RAS', 'int16')
    """

    data: np.ndarray
    affine_ras: np.ndarray
    modality: str = "MR"
    description: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        colour = self.data.ndim == 4 and self.data.shape[3] == 3 and self.data.dtype == np.uint8
        if self.data.ndim != 3 and not colour:
            raise ValueError(
                f'Argument "data" must be 3-D (or 3-D RGB uint8), got shape {self.data.shape}.'
            )
        if self.data.dtype.kind not in "biuf":
            raise ValueError(f'Argument "data" must be numeric, got dtype {self.data.dtype}.')
        affine = np.asarray(self.affine_ras, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError('Argument "affine_ras" must be a finite 4x4 matrix.')
        # The dataclass is frozen; normalising the dtype once here means every
        # consumer can rely on float64 without re-checking.
        object.__setattr__(self, "affine_ras", affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of voxels along ``(i, j, k)``."""
        ni, nj, nk = self.data.shape[:3]
        return int(ni), int(nj), int(nk)

    @property
    def is_rgb(self) -> bool:
        """True for colour images: ``data`` is then ``(i, j, k, 3)`` uint8 RGB."""
        return self.data.ndim == 4

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(i, j, k)`` (column norms of the affine)."""
        norms = np.linalg.norm(self.affine_ras[:3, :3], axis=0)
        return float(norms[0]), float(norms[1]), float(norms[2])

    @property
    def orientation(self) -> str:
        """Closest anatomical direction of increasing ``i, j, k``, e.g. ``"RAS"``."""
        return "".join(str(code) for code in aff2axcodes(self.affine_ras))

    @property
    def dtype(self) -> str:
        """Name of the voxel dtype, e.g. ``"int16"``."""
        return str(self.data.dtype)


def _closest_canonical_ornt(affine_ras: npt.ArrayLike) -> np.ndarray:
    return io_orientation(np.asarray(affine_ras, dtype=np.float64))


def to_closest_canonical(volume: Volume) -> Volume:
    """Permute and flip voxel axes so that ``i, j, k`` point closest to R, A, S.

    Same semantics as :func:`nibabel.as_closest_canonical`: no resampling, the
    voxel values are only reordered and the affine is updated so that every
    voxel keeps its world position. An oblique grid stays oblique.

    Parameters
    ----------
    volume : Volume
        Any volume.

    Returns
    -------
    Volume
        The same image with orientation ``"RAS"`` (the input itself when it
        already is).

    Examples
    --------
    >>> import numpy as np
    >>> las = Volume(np.arange(24).reshape(2, 3, 4), np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> ras = to_closest_canonical(las)
    >>> ras.orientation, int(ras.data[0, 0, 0]), float(ras.affine_ras[0, 3])
    ('RAS', 12, -1.0)
    """
    ornt = _closest_canonical_ornt(volume.affine_ras)
    if np.array_equal(ornt, _RAS_ORNT):
        return volume
    data = apply_orientation(volume.data, ornt)
    affine = volume.affine_ras @ inv_ornt_aff(ornt, volume.shape)
    return Volume(data, affine, volume.modality, volume.description, volume.notes)


def reorient_labels_like(labels: np.ndarray, affine_ras: npt.ArrayLike) -> np.ndarray:
    """Reorder a label map exactly as :func:`to_closest_canonical` reorders its image.

    Parameters
    ----------
    labels : numpy.ndarray
        Label values in ``(i, j, k)`` order on the image grid.
    affine_ras : array_like
        The 4x4 affine of the *image* (before reorientation).

    Returns
    -------
    numpy.ndarray
        The label map in the canonical voxel order of the image (a view when
        possible).
    """
    if labels.ndim != 3:
        raise ValueError(f'Argument "labels" must be 3-D, got shape {labels.shape}.')
    ornt = _closest_canonical_ornt(affine_ras)
    if np.array_equal(ornt, _RAS_ORNT):
        return labels
    return np.asarray(apply_orientation(labels, ornt))


def check_same_grid(
    image_affine: npt.ArrayLike,
    image_shape: tuple[int, ...],
    label_affine: npt.ArrayLike,
    label_shape: tuple[int, ...],
    *,
    path: str | os.PathLike[str],
    atol_mm: float = 1e-3,
) -> None:
    """Refuse a label map whose voxel grid differs from its image's.

    Parameters
    ----------
    image_affine, label_affine : array_like
        4x4 voxel-to-RAS affines in mm.
    image_shape, label_shape : tuple of int
        Voxel counts along ``(i, j, k)``.
    path : str or os.PathLike
        The label file, named in the error.
    atol_mm : float
        Largest tolerated difference of any affine entry, in mm.

    Raises
    ------
    ImagingError
        With both shapes and the largest affine difference in the message.
    """
    image_shape = tuple(int(n) for n in image_shape)
    label_shape = tuple(int(n) for n in label_shape)
    diff_mm = float(
        np.max(
            np.abs(
                np.asarray(image_affine, dtype=np.float64)
                - np.asarray(label_affine, dtype=np.float64)
            )
        )
    )
    if image_shape != label_shape or not diff_mm <= atol_mm:
        raise ImagingError(
            path,
            f"label grid does not match the image: label shape {label_shape} vs image "
            f"shape {image_shape}, largest affine difference {diff_mm:.6g} mm "
            f"(tolerance {atol_mm:g} mm)",
        )
