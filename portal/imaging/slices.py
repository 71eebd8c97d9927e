"""One full-resolution slice of a closest-canonical volume, placed on its preview's grid.

The viewer shows a strided preview (:func:`~portal.imaging.preview.build_preview`); to
judge a boundary it fetches the slice under the reviewer's eye at full resolution. Both
live in closest-canonical RAS voxel order (``i`` towards Right, ``j`` Anterior, ``k``
Superior) and are drawn axis-aligned from an origin and a spacing, so full index
``n * step`` of an axis lies exactly where preview slice ``n`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from nibabel.orientations import inv_ornt_aff, io_orientation

__all__ = ["CanonicalGrid", "SliceAxis", "canonical_grid", "slice_origin_mm", "take_slice"]


class SliceAxis(enum.StrEnum):
    """A slice orientation, named as radiologists do; its value is the URL segment."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"

    @property
    def dim(self) -> int:
        """The canonical array axis held constant: ``k`` (2), ``j`` (1) or ``i`` (0).

        Examples
        --------
        >>> SliceAxis("axial").dim, SliceAxis.SAGITTAL.dim
        (2, 0)
        """
        return {"axial": 2, "coronal": 1, "sagittal": 0}[self.value]


@dataclass(frozen=True)
class CanonicalGrid:
    """Where the closest-canonical copy of a volume lies, found from its header alone.

    Parameters
    ----------
    shape : tuple of int
        Voxel count along canonical ``i, j, k``.
    spacing_mm : tuple of float
        Voxel size along canonical ``i, j, k``.
    origin_mm : tuple of float
        RAS world position of canonical voxel ``(0, 0, 0)``.
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]


def canonical_grid(shape: Sequence[int], affine_ras: npt.ArrayLike) -> CanonicalGrid:
    """The grid :func:`~portal.imaging.volume.to_closest_canonical` gives, without the voxels.

    Parameters
    ----------
    shape : sequence of int
        Voxel count along the stored ``i, j, k`` (a fourth entry is ignored).
    affine_ras : array_like
        4x4 voxel-to-RAS affine of the stored grid.

    Returns
    -------
    CanonicalGrid

    Examples
    --------
    >>> import numpy as np
    >>> grid = canonical_grid((10, 20, 30), np.diag([-2.0, 1.0, 3.0, 1.0]))
    >>> grid.shape, grid.spacing_mm, grid.origin_mm
    ((10, 20, 30), (2.0, 1.0, 3.0), (-18.0, 0.0, 0.0))
    >>> canonical_grid((10, 20, 30), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]).shape
    (30, 10, 20)
    """
    affine = np.asarray(affine_ras, dtype=np.float64)
    stored = tuple(int(n) for n in shape[:3])
    ornt = io_orientation(affine)
    canonical_affine = affine @ inv_ornt_aff(ornt, stored)
    # ornt[n, 0] is the canonical axis stored axis n becomes.
    order = [0, 0, 0]
    for n, (axis, _flip) in enumerate(ornt):
        order[int(axis)] = stored[n]
    spacing = np.linalg.norm(canonical_affine[:3, :3], axis=0)
    origin = canonical_affine[:3, 3]
    return CanonicalGrid(
        shape=(order[0], order[1], order[2]),
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
    )


def _checked_index(shape: Sequence[int], axis: SliceAxis, index: int) -> int:
    size = int(shape[axis.dim])
    if not 0 <= int(index) < size:
        raise IndexError(f"{axis.value} slice {index} is outside 0..{size - 1}")
    return int(index)


def take_slice(volume: np.ndarray, axis: SliceAxis, index: int) -> np.ndarray:
    """Slice `index` along `axis` of a canonical ``(i, j, k)`` array, kept 3-D.

    Parameters
    ----------
    volume : numpy.ndarray
        Canonical ``(i, j, k)`` or ``(i, j, k, c)`` voxels (a memory map is read only
        where the slice lies).
    axis : SliceAxis
        Which array axis is held at `index`.
    index : int
        0 to the axis length minus 1.

    Returns
    -------
    numpy.ndarray
        A copy whose `axis` has length 1: axial ``(ni, nj, 1)``, coronal ``(ni, 1, nk)``,
        sagittal ``(1, nj, nk)``.

    Raises
    ------
    IndexError
        When `index` is outside the axis, naming both.

    Examples
    --------
    >>> import numpy as np
    >>> take_slice(np.arange(24).reshape(2, 3, 4), SliceAxis.CORONAL, 2).ravel().tolist()
    [8, 9, 10, 11, 20, 21, 22, 23]
    """
    n = _checked_index(volume.shape, axis, index)
    chosen: list[slice] = [slice(None)] * volume.ndim
    chosen[axis.dim] = slice(n, n + 1)
    return np.array(volume[tuple(chosen)])


def slice_origin_mm(grid: CanonicalGrid, axis: SliceAxis, index: int) -> tuple[float, float, float]:
    """RAS world position of voxel ``(0, 0, 0)`` of slice `index`: the grid's origin moved
    `index` voxels along `axis`, as the viewer draws the canonical grid (axis-aligned).

    Examples
    --------
    >>> grid = CanonicalGrid((4, 4, 10), (1.0, 1.0, 2.5), (-1.0, -2.0, -3.0))
    >>> slice_origin_mm(grid, SliceAxis.AXIAL, 4)
    (-1.0, -2.0, 7.0)
    """
    n = _checked_index(grid.shape, axis, index)
    origin = list(grid.origin_mm)
    origin[axis.dim] += n * grid.spacing_mm[axis.dim]
    return origin[0], origin[1], origin[2]
