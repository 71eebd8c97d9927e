"""Put a label map on its image's grid by nearest-neighbour resampling, when asked to.

Only ever done on the user's request: a label map on a different grid is more often the
wrong file than a coarser export of the right one, and resampling would hide that.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["grid_difference", "resample_labels"]


def resample_labels(
    labels: np.ndarray,
    label_affine_ras: npt.ArrayLike,
    image_affine_ras: npt.ArrayLike,
    image_shape: tuple[int, int, int],
) -> np.ndarray:
    """Sample a label map at the centre of every image voxel (nearest neighbour).

    Parameters
    ----------
    labels : numpy.ndarray
        uint16 label values in the label map's own ``(i, j, k)`` order.
    label_affine_ras, image_affine_ras : array_like
        4x4 voxel-to-RAS affines in mm of the label map and of the image.
    image_shape : tuple of int
        The image grid's voxel counts.

    Returns
    -------
    numpy.ndarray
        uint16 labels on the image grid; 0 where the image voxel lies outside the
        label map. Values are never blended: each output voxel takes the value of
        the label voxel whose centre is nearest.

    Examples
    --------
    >>> import numpy as np
    >>> coarse = np.zeros((2, 2, 2), np.uint16); coarse[1, 1, 1] = 7
    >>> fine = resample_labels(coarse, np.diag([2.0, 2, 2, 1]), np.eye(4), (4, 4, 4))
    >>> [int(fine[n, n, n]) for n in range(4)]  # coarse voxel 1 spans 1 to 3 mm
    [0, 7, 7, 0]
    """
    # image voxel -> world -> label voxel, as one matrix for ndimage's pull resampling.
    to_label = np.linalg.inv(np.asarray(label_affine_ras, float)) @ np.asarray(
        image_affine_ras, float
    )
    # Half-voxel rounding goes the same way on every axis (ties to the higher index).
    offset = to_label[:3, 3] + 1e-6
    return ndimage.affine_transform(
        labels,
        to_label[:3, :3],
        offset=offset,
        output_shape=tuple(int(n) for n in image_shape),
        output=np.uint16,
        order=0,
        mode="grid-constant",  # voxels own half a voxel beyond their centre
        cval=0,
        prefilter=False,
    )


def grid_difference(
    image_affine_ras: npt.ArrayLike,
    image_shape: tuple[int, ...],
    label_affine_ras: npt.ArrayLike,
    label_shape: tuple[int, ...],
) -> str:
    """A short human description of how a label grid differs from its image's.

    Examples
    --------
    >>> import numpy as np
    >>> grid_difference(np.eye(4), (4, 4, 4), np.diag([2.0, 2, 2, 1]), (2, 2, 2))
    'label grid (2, 2, 2) at 2x2x2 mm resampled to image grid (4, 4, 4) at 1x1x1 mm'
    """

    def spacing(affine: npt.ArrayLike) -> str:
        norms = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
        return "x".join(f"{n:g}" for n in np.round(norms, 3))

    return (
        f"label grid {tuple(int(n) for n in label_shape[:3])} at {spacing(label_affine_ras)} mm "
        f"resampled to image grid {tuple(int(n) for n in image_shape[:3])} "
        f"at {spacing(image_affine_ras)} mm"
    )
