"""Read FreeSurfer MGH/MGZ images with nibabel.

An MGH header stores the voxel-to-RAS matrix (``vox2ras``) directly, so the
affine is nibabel's :attr:`MGHImage.affine` unchanged: voxel ``(i, j, k)`` to
RAS+ millimetres, the same convention as NIfTI. Sizes are checked from the
header before any voxel is read, and every failure is reported as
:class:`~portal.imaging.errors.ImagingError` naming the file.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.fileholders import FileHolder
from nibabel.freesurfer.mghformat import MGHError, MGHImage
from nibabel.openers import ImageOpener
from nibabel.spatialimages import HeaderDataError

from portal.imaging.errors import ImagingError, exception_text
from portal.imaging.nifti import DEFAULT_MAX_VOXELS
from portal.imaging.volume import Volume

__all__ = ["mgh_stem", "read_mgh"]

logger = logging.getLogger(__name__)

# What nibabel, gzip and numpy raise for missing, truncated or corrupt files.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    ImageFileError,
    MGHError,
    HeaderDataError,
    KeyError,
)

# Start of an MGH header: version, 4 dims, type (big-endian int32); nibabel reads 90
# bytes of header fields, and the voxels start at byte 284.
_MGH_HEADER = struct.Struct(">6i")
_MGH_HEADER_BYTES = 90
# uchar, int32, float32, int16, uint16: the voxel types nibabel reads.
_MGH_TYPES = frozenset({0, 1, 3, 4, 10})


def mgh_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.mgh`` or ``.mgz``.

    Examples
    --------
    >>> mgh_stem("/subjects/bert/mri/T1.mgz")
    'T1'
    """
    name = Path(path).name
    for suffix in (".mgz", ".mgh.gz", ".mgh"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_raw_header(path: Path, max_voxels: int) -> None:
    """Refuse a malformed or too large header from its bytes, before nibabel reads it."""
    try:
        if path.name.lower().endswith((".mgz", ".gz")):
            with gzip.open(path, "rb") as fh:
                raw = fh.read(_MGH_HEADER_BYTES)
        else:
            with path.open("rb") as fh:
                raw = fh.read(_MGH_HEADER_BYTES)
    except gzip.BadGzipFile as exc:
        raise ImagingError(path, "an .mgz file must be gzip-compressed, this one is not") from exc
    except (EOFError, zlib.error) as exc:
        raise ImagingError(
            path, f"corrupt or truncated gzip stream ({exception_text(exc, path)})"
        ) from exc
    except OSError as exc:
        raise ImagingError(path, f"cannot be read ({exception_text(exc, path)})") from exc
    if len(raw) < _MGH_HEADER_BYTES:
        raise ImagingError(
            path, f"file is shorter than an MGH header ({len(raw)} of {_MGH_HEADER_BYTES} bytes)"
        )
    version, *dims, type_code = _MGH_HEADER.unpack_from(raw)
    if version != 1:
        raise ImagingError(path, f"MGH format version {version} is not supported (expected 1)")
    if min(dims) < 1:
        word = "negative" if min(dims) < 0 else "zero"
        raise ImagingError(path, f"header declares a {word} size: {tuple(dims)}")
    if type_code not in _MGH_TYPES:
        raise ImagingError(path, f"MGH voxel type code {type_code} is not supported")
    n_voxels = math.prod(dims[:3])  # Python ints: no wrap-around for forged sizes
    if n_voxels > max_voxels:
        raise ImagingError(
            path,
            f"declared 3-D size {tuple(dims[:3])} is {n_voxels} voxels, "
            f"more than the limit of {max_voxels}",
        )


def _check_header(path: Path, img: MGHImage, max_voxels: int) -> None:
    """Refuse what cannot be read safely, before any voxel is read."""
    shape = tuple(int(n) for n in img.header.get_data_shape())
    if len(shape) < 3 or min(shape) < 1:
        raise ImagingError(path, f"expected a 3-D image, header declares shape {shape}")
    n_voxels = int(np.prod(shape[:3], dtype=np.int64))
    if n_voxels > max_voxels:
        raise ImagingError(
            path,
            f"declared 3-D size {shape[:3]} is {n_voxels} voxels, "
            f"more than the limit of {max_voxels}",
        )


def _read_first_frame(path: Path, max_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxels of the first frame (as stored) and the vox2ras affine."""
    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    _check_raw_header(path, max_voxels)
    try:
        # We own the file object: MGHImage.from_filename leaves its header
        # file handle open (a ResourceWarning), and the proxy reads from ours.
        with ImageOpener(str(path), "rb") as opener:
            try:
                img = MGHImage.from_file_map({"image": FileHolder(fileobj=opener.fobj)}, mmap=False)
            except _READ_ERRORS as exc:
                raise ImagingError(
                    path, f"not a readable MGH/MGZ file ({exception_text(exc, path)})"
                ) from exc
            _check_header(path, img, max_voxels)
            shape = img.header.get_data_shape()
            # Slicing the proxy reads only the first frame from disk.
            first = (slice(None),) * 3 + (0,) * (len(shape) - 3)
            data = np.asarray(img.dataobj[first])
    except _READ_ERRORS as exc:
        raise ImagingError(
            path, f"truncated or corrupt voxel data ({exception_text(exc, path)})"
        ) from exc
    if len(shape) > 3:
        logger.debug("%s has shape %s; using the first frame", path, tuple(shape))
    return data, np.asarray(img.affine, dtype=np.float64)


def read_mgh(
    path: str | os.PathLike[str],
    *,
    modality: str = "MR",
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Volume:
    """Read a FreeSurfer ``.mgh`` or ``.mgz`` image.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.mgz`` is gzip-compressed ``.mgh``).
    modality : str
        DICOM modality code to record; MGH does not store one.
    max_voxels : int
        Refuse images whose 3-D voxel count, as declared in the header, is
        larger. Checked before reading voxel data.

    Returns
    -------
    Volume
        Voxels in ``(i, j, k)`` order in their stored dtype (uint8, int16,
        int32 or float32, native byte order); for 4-D files the first frame.
        ``affine_ras`` is the header's vox2ras matrix. NaN and infinite values
        are replaced by 0 so they display.

    Raises
    ------
    ImagingError
        If the file is missing, not MGH, truncated or too large.

    Examples
    --------
    >>> import os, nibabel
    >>> path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "test.mgz")
    >>> vol = read_mgh(path)
    >>> vol.shape, vol.dtype, vol.description
    ((3, 4, 5), 'float32', 'test')
    """
    path = Path(path)
    data, affine = _read_first_frame(path, max_voxels)
    if not data.dtype.isnative:
        # MGH is big-endian on disk; downstream code (and the browser) wants native.
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        logger.debug("%s: replacing NaN/Inf voxels by 0 for display", path)
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return Volume(np.ascontiguousarray(data), affine, modality, mgh_stem(path))
