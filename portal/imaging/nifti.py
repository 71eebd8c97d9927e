"""Read and write NIfTI-1/2 images and label maps with nibabel.

Every failure is reported as :class:`~portal.imaging.errors.ImagingError`
naming the file. Sizes are checked from the header before any voxel is read,
so a forged header cannot make the server allocate gigabytes.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel.filebasedimages import ImageFileError

from portal.imaging.errors import ImagingError
from portal.imaging.volume import Volume

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "MAX_LABEL_VALUE",
    "nifti_stem",
    "read_label_nifti",
    "read_nifti",
    "write_nifti",
]

logger = logging.getLogger(__name__)

#: Largest number of voxels in the 3-D volume that is read (512 Mi voxels,
#: i.e. 2 GiB as float32).
DEFAULT_MAX_VOXELS = 1024**3 // 2

#: Label values are stored as uint16.
MAX_LABEL_VALUE = 65535

# What nibabel, gzip and numpy raise for missing, truncated or corrupt files.
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, ImageFileError)


def nifti_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.nii`` or ``.nii.gz``.

    Examples
    --------
    >>> nifti_stem("/data/brain.nii.gz")
    'brain'
    """
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _load_header_checked(path: Path, max_voxels: int) -> nib.Nifti1Image | nib.Nifti2Image:
    """Open the image (header only) and refuse what cannot be read safely."""
    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    try:
        # mmap=False: the returned arrays must not keep the file open or be
        # read-only views of it (NaN cleaning writes in place).
        img = nib.load(path, mmap=False)
    except _READ_ERRORS as exc:
        raise ImagingError(path, f"not a readable NIfTI file ({exc})") from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ImagingError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    shape = img.header.get_data_shape()
    if len(shape) < 2:
        raise ImagingError(path, f"expected a 3-D image, header declares shape {shape}")
    dtype = img.header.get_data_dtype()
    if dtype.kind == "c":
        raise ImagingError(path, f"complex voxel data ({dtype}) is not supported")
    if dtype.kind not in "biuf":
        raise ImagingError(path, f"voxel type {dtype} is not supported (RGB or structured)")
    n_voxels = int(np.prod([int(n) for n in shape[:3]], dtype=np.int64))
    if n_voxels > max_voxels:
        raise ImagingError(
            path,
            f"declared 3-D size {tuple(shape[:3])} is {n_voxels} voxels, "
            f"more than the limit of {max_voxels}",
        )
    return img


def _has_scaling(img: nib.Nifti1Image | nib.Nifti2Image) -> bool:
    # On load nibabel moves scl_slope/scl_inter from the header into the
    # array proxy (and blanks them in img.header), so ask the proxy.
    slope = float(getattr(img.dataobj, "slope", 1.0))
    inter = float(getattr(img.dataobj, "inter", 0.0))
    return slope != 1.0 or inter != 0.0


def _read_first_volume(path: Path, img: nib.Nifti1Image | nib.Nifti2Image) -> np.ndarray:
    """Voxels of the first 3-D volume, scaled, in native byte order."""
    shape = img.header.get_data_shape()
    scaled = _has_scaling(img)
    try:
        if len(shape) == 3:
            # get_fdata only when scaling is real, so integer images stay integer.
            data = img.get_fdata(dtype=np.float32) if scaled else np.asanyarray(img.dataobj)
        elif len(shape) == 2:
            data = np.asanyarray(img.dataobj)[:, :, np.newaxis]
        else:
            # Slicing the proxy reads only the first volume from disk.
            first = (slice(None),) * 3 + (0,) * (len(shape) - 3)
            data = np.asanyarray(img.dataobj[first])
            logger.debug("%s has shape %s; using the first 3-D volume", path, shape)
    except _READ_ERRORS as exc:
        raise ImagingError(path, f"truncated or corrupt voxel data ({exc})") from exc
    data = np.asarray(data)
    if scaled:
        data = data.astype(np.float32, copy=False)
    elif data.dtype == np.bool_:
        data = data.astype(np.uint8)
    elif data.dtype == np.float16:
        data = data.astype(np.float32)
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    return data


def read_nifti(
    path: str | os.PathLike[str],
    *,
    modality: str = "MR",
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Volume:
    """Read a ``.nii`` or ``.nii.gz`` image.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    modality : str
        DICOM modality code to record; NIfTI does not store one.
    max_voxels : int
        Refuse images whose 3-D voxel count, as declared in the header, is
        larger. Checked before reading voxel data.

    Returns
    -------
    Volume
        For 4-D (or higher) files the first 3-D volume; 2-D files become one
        slice. Scaled images are float32, unscaled ones keep their stored
        dtype. NaN and infinite values are replaced by 0 so they display.

    Raises
    ------
    ImagingError
        If the file is missing, not NIfTI, truncated, complex-valued or too large.

    Examples
    --------
    >>> import os, nibabel
    >>> path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
    >>> vol = read_nifti(path)
    >>> vol.shape, vol.description
    ((33, 41, 25), 'anatomical')
    """
    path = Path(path)
    img = _load_header_checked(path, max_voxels)
    data = _read_first_volume(path, img)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        n_bad = int(np.count_nonzero(~np.isfinite(data)))
        logger.debug("%s: replacing %d NaN/Inf voxels by 0 for display", path, n_bad)
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return Volume(data, np.asarray(img.affine, dtype=np.float64), modality, nifti_stem(path))


def read_label_nifti(
    path: str | os.PathLike[str], *, max_voxels: int = DEFAULT_MAX_VOXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Read a label map (segmentation) stored as NIfTI.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_voxels : int
        As for :func:`read_nifti`.

    Returns
    -------
    labels : numpy.ndarray
        uint16 label values in ``(i, j, k)`` order, 0 meaning background.
    affine_ras : numpy.ndarray
        4x4 float64 voxel-to-RAS affine in mm.

    Raises
    ------
    ImagingError
        As :func:`read_nifti`, and for negative, non-integer, non-finite or
        larger than 65535 values.
    """
    path = Path(path)
    img = _load_header_checked(path, max_voxels)
    data = _read_first_volume(path, img)
    if data.size:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)):
                raise ImagingError(path, "label values must be finite (found NaN or Inf)")
            if not np.array_equal(data, np.round(data)):
                raise ImagingError(path, "label values must be whole numbers")
        low, high = data.min(), data.max()
        if low < 0:
            raise ImagingError(path, f"label values must not be negative (minimum {low})")
        if high > MAX_LABEL_VALUE:
            raise ImagingError(
                path, f"label values must be at most {MAX_LABEL_VALUE} (maximum {high})"
            )
    return data.astype(np.uint16), np.asarray(img.affine, dtype=np.float64)


def write_nifti(
    path: str | os.PathLike[str], data: npt.ArrayLike, affine_ras: npt.ArrayLike
) -> Path:
    """Write voxels in ``(i, j, k)`` order as NIfTI-1 with both qform and sform set.

    Parameters
    ----------
    path : str or os.PathLike
        Target, ``.nii`` or ``.nii.gz`` (gzip output is byte-for-byte
        reproducible: nibabel writes no timestamp).
    data : array_like
        3-D voxel values, stored in their own dtype without scaling.
    affine_ras : array_like
        4x4 voxel-to-RAS affine in mm.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise ValueError(f'Argument "data" must be numeric, got dtype {array.dtype}.')
    affine = np.asarray(affine_ras, dtype=np.float64)
    img = nib.Nifti1Image(array, affine)
    # Code 1 = scanner anatomical; readers that only look at the qform
    # (some older viewers) then see the same geometry as those using the sform.
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    img.header.set_slope_inter(1.0, 0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path
