"""Read and write NIfTI-1/2 images and label maps with nibabel.

Every failure is reported as :class:`~portal.imaging.errors.ImagingError`
naming the file. Sizes are checked from the header before any voxel is read,
so a forged header cannot make the server allocate gigabytes.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import numpy.typing as npt
from isal import igzip, isal_zlib
from nibabel.arrayproxy import ArrayProxy
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from portal.imaging.errors import ImagingError, exception_text
from portal.imaging.volume import Volume

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "MAX_LABEL_VALUE",
    "nifti_stem",
    "nifti_volume_count",
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
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, ImageFileError, HeaderDataError)
# isal's stub types its `error` as a value, not an exception class.
_INFLATE_ERROR = cast(type[Exception], isal_zlib.error)

# sizeof_hdr -> (version, offset of dim[8], dim item format, offset and accepted magics).
_NIFTI_LAYOUTS = {
    348: (1, 40, "8h", 344, (b"n+1\0", b"ni1\0")),
    540: (2, 16, "8q", 4, (b"n+2\0\r\n\x1a\n", b"ni2\0\r\n\x1a\n")),
}


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


def _raw_header(path: Path) -> bytes:
    """The first 540 bytes (fewer for a shorter file), inflated for ``.gz``.

    Only as much of a gzip stream is inflated as the header needs: damage further on
    is the voxel reader's to report.
    """
    try:
        with path.open("rb") as fh:
            if not path.name.lower().endswith(".gz"):
                return fh.read(540)
            magic = fh.read(2)
            if magic and magic != b"\x1f\x8b":
                raise ImagingError(path, "file name ends in .gz but it is not gzip-compressed")
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            head = inflater.decompress(magic)
            while len(head) < 540 and not inflater.eof and (chunk := fh.read(4096)):
                head += inflater.decompress(chunk, 540 - len(head))
            return head
    except zlib.error as exc:
        raise ImagingError(path, f"corrupt gzip stream ({exception_text(exc, path)})") from exc
    except OSError as exc:
        raise ImagingError(path, f"cannot be read ({exception_text(exc, path)})") from exc


def _check_raw_header(path: Path, max_voxels: int) -> None:
    """Refuse a malformed or too large NIfTI header from its bytes, before nibabel sees it.

    nibabel guesses what it cannot read (byte order from ``dim[0]``, a file type from the
    magic) and computes sizes in fixed-width integers; checking the raw fields first
    gives reasons that name the field and keeps forged sizes away from any allocation.
    """
    raw = _raw_header(path)
    if not raw:
        raise ImagingError(path, "file is empty")
    if len(raw) < 4:
        raise ImagingError(path, f"file is shorter than a NIfTI header ({len(raw)} bytes)")
    for order in "<>":
        (sizeof_hdr,) = struct.unpack_from(order + "i", raw)
        if sizeof_hdr in _NIFTI_LAYOUTS:
            break
    else:
        raise ImagingError(
            path,
            "not a NIfTI file: its header size field is neither 348 (NIfTI-1) nor 540 (NIfTI-2)",
        )
    version, dim_at, dim_format, magic_at, magics = _NIFTI_LAYOUTS[sizeof_hdr]
    if len(raw) < sizeof_hdr:
        raise ImagingError(
            path,
            f"file is shorter than a NIfTI-{version} header ({len(raw)} of {sizeof_hdr} bytes)",
        )
    magic = raw[magic_at : magic_at + len(magics[0])]
    if magic not in magics:
        raise ImagingError(path, f"not a NIfTI-{version} file: wrong magic {magic!r} in the header")
    dim = struct.unpack_from(order + dim_format, raw, dim_at)
    if not 1 <= dim[0] <= 7:
        raise ImagingError(path, f"header dim[0] is {dim[0]}; it must be 1 to 7 (number of axes)")
    sizes = dim[1 : dim[0] + 1]
    if min(sizes) < 1:
        word = "negative" if min(sizes) < 0 else "zero"
        raise ImagingError(path, f"header declares a {word} size: dim[1:{dim[0] + 1}] is {sizes}")
    n_voxels = math.prod(sizes[:3])  # Python ints: no wrap-around for forged sizes
    if n_voxels > max_voxels:
        raise ImagingError(
            path,
            f"declared 3-D size {tuple(sizes[:3])} is {n_voxels} voxels, "
            f"more than the limit of {max_voxels}",
        )


def _load_header_checked(path: Path, max_voxels: int) -> nib.Nifti1Image | nib.Nifti2Image:
    """Open the image (header only) and refuse what cannot be read safely."""
    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    _check_raw_header(path, max_voxels)
    try:
        # mmap=False: the returned arrays must not keep the file open or be
        # read-only views of it (NaN cleaning writes in place).
        img = _load_image(path)
    except EOFError as exc:
        raise ImagingError(path, f"file is truncated ({exception_text(exc, path)})") from exc
    except _READ_ERRORS as exc:
        raise ImagingError(
            path, f"not a readable NIfTI file ({exception_text(exc, path)})"
        ) from exc
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
    n_voxels = math.prod(int(n) for n in shape[:3])
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


# After the voxels of a .nii.gz, inflate at most this much more to reach its gzip CRC.
_GZIP_CHECK_TAIL_BYTES = 64 * 1024


@contextmanager
def _gzip_stream(path: Path) -> Iterator[io.BufferedIOBase]:
    """The inflated content of a gzip file as a seekable, read-only stream (ISA-L igzip).

    ISA-L inflates about 1.5x faster than zlib or indexed_gzip and without holding the
    GIL. Its C reader is used under a plain BufferedReader because ``IGzipFile.readinto``
    (inherited from BufferedIOBase) reads into a new bytes object and copies it, which
    for a 157 MB CT costs more than the header checks and the rest of the read together.
    """
    reader = getattr(isal_zlib, "_GzipReader", None)
    if reader is None:  # a python-isal without the C reader: the same bytes, slower
        with igzip.open(path, "rb") as stream:
            yield stream
        return
    with path.open("rb") as raw, io.BufferedReader(reader(raw, igzip.READ_BUFFER_SIZE)) as stream:
        yield stream


def _single_file_class(head: bytes) -> type[nib.Nifti1Image] | type[nib.Nifti2Image] | None:
    """Nifti1Image or Nifti2Image from the first 540 header bytes, None if neither."""
    if len(head) < 4:
        return None
    for order in "<>":
        (sizeof_hdr,) = struct.unpack_from(order + "i", head)
        if sizeof_hdr == 348 and head[344:348] == b"n+1\0":
            return nib.Nifti1Image
        if sizeof_hdr == 540 and head[4:12] == b"n+2\0\r\n\x1a\n":
            return nib.Nifti2Image
    return None


def _load_image(path: Path) -> nib.filebasedimages.FileBasedImage:
    """``nib.load(path, mmap=False)``, with a ``.nii.gz`` header read through ISA-L.

    nibabel opens gzip files with indexed_gzip, which inflates a first index block before
    it hands out the header: ~40 ms for a 70 MB CT, a tenth of reading its voxels. The
    image returned names the file again, like nib.load's, so its proxy reads as usual.
    Anything but a single-file NIfTI-1/2 goes to nib.load, which explains what it is.
    """
    if not path.name.lower().endswith(".nii.gz"):
        return nib.load(path, mmap=False)
    try:
        with _gzip_stream(path) as stream:
            klass = _single_file_class(stream.read(540))
            if klass is None:
                return nib.load(path, mmap=False)
            stream.seek(0)
            img = klass.from_file_map({"image": nib.FileHolder(str(path), stream)}, mmap=False)
    except _INFLATE_ERROR:
        return nib.load(path, mmap=False)  # nibabel's gzip reports the damage in its words
    # from_file_map pointed the proxy at the (now closed) stream; nib.load names the file.
    img.dataobj.file_like = str(path)
    img.file_map = klass.filespec_to_file_map(str(path))
    return img


@contextmanager
def _voxel_source(path: Path, img: nib.Nifti1Image | nib.Nifti2Image) -> Iterator[ArrayProxy]:
    """The image's array proxy; for ``.gz`` files one that reads through ISA-L's gzip.

    Same shape, stored dtype, offset, order and scaling as ``img.dataobj``, so nibabel
    applies its own reading and scaling rules, and reads no more than the header
    declares (a gzip bomb stays bounded by the voxel limit checked before); only the
    inflater differs (see :func:`_gzip_stream`).
    """
    proxy = cast(ArrayProxy, img.dataobj)
    if not path.name.lower().endswith(".gz") or type(proxy) is not ArrayProxy:
        yield proxy
        return
    spec = (proxy.shape, proxy.dtype, proxy.offset, proxy.slope, proxy.inter)
    with _gzip_stream(path) as stream:
        yield ArrayProxy(stream, spec, mmap=False, order=proxy.order)
        # Inflate the rest, if short (nothing after a 3-D image), so that the gzip CRC is
        # checked and damage inside the voxels is an error, not wrong voxels; the further
        # volumes of a 4-D file stay unread.
        stream.read(_GZIP_CHECK_TAIL_BYTES)


def _read_first_volume(
    path: Path, img: nib.Nifti1Image | nib.Nifti2Image, volume_index: int = 0
) -> np.ndarray:
    """Voxels of the first (or `volume_index`-th) 3-D volume, scaled, native byte order."""
    shape = img.header.get_data_shape()
    count = volume_count_of(shape)
    if not 0 <= volume_index < count:
        raise ImagingError(path, f"volume {volume_index} asked for, the file holds {count}")
    scaled = _has_scaling(img)
    try:
        with _voxel_source(path, img) as source:
            if len(shape) == 3:
                # Scaled to float32 (as get_fdata) only when scaling is real, so
                # integer images stay integer.
                data = np.asanyarray(source, dtype=np.float32) if scaled else np.asanyarray(source)
            elif len(shape) == 2:
                data = np.asanyarray(source)[:, :, np.newaxis]
            else:
                # Slicing the proxy reads only that volume (and what precedes it) from disk.
                extra = np.unravel_index(volume_index, shape[3:], order="F")
                first = (slice(None),) * 3 + tuple(int(n) for n in extra)
                data = np.asanyarray(source[first])
                logger.debug("%s has shape %s; using 3-D volume %d", path, shape, volume_index)
    except (*_READ_ERRORS, _INFLATE_ERROR) as exc:
        raise ImagingError(
            path, f"truncated or corrupt voxel data ({exception_text(exc, path)})"
        ) from exc
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
    volume_index: int = 0,
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
    volume_index : int
        Which 3-D volume of a 4-D (or higher) file to read, counting the extra
        dimensions in NIfTI's (Fortran) order; see :func:`nifti_volume_count`.

    Returns
    -------
    Volume
        For 4-D (or higher) files one 3-D volume, the first by default; 2-D files become one
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
    data = _read_first_volume(path, img, volume_index)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        n_bad = int(np.count_nonzero(~np.isfinite(data)))
        logger.debug("%s: replacing %d NaN/Inf voxels by 0 for display", path, n_bad)
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return Volume(data, np.asarray(img.affine, dtype=np.float64), modality, nifti_stem(path))


def volume_count_of(shape: tuple[int, ...]) -> int:
    """Number of 3-D volumes in an array of `shape` (1 for 2-D and 3-D)."""
    return int(np.prod([int(n) for n in shape[3:]], dtype=np.int64)) if len(shape) > 3 else 1


def nifti_volume_count(path: str | os.PathLike[str]) -> int:
    """How many 3-D volumes a NIfTI file holds (time points, diffusion directions).

    Reads the header only.

    Examples
    --------
    >>> import os, nibabel
    >>> folder = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
    >>> nifti_volume_count(os.path.join(folder, "example4d.nii.gz"))
    2
    """
    # The same header checks as reading; the voxel limit is the reader's to apply.
    img = _load_header_checked(Path(path), max_voxels=2**63 - 1)
    return volume_count_of(tuple(img.shape))


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
