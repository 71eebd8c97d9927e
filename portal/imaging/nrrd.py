"""Read NRRD images and 3D Slicer ``.seg.nrrd`` segmentations with pynrrd.

Geometry follows the NRRD format: ``space directions`` gives one world
vector per axis (``none`` for non-spatial axes such as Slicer's segment
layers), ``space origin`` the world position of voxel ``(0, 0, 0)``, and
``space`` the world frame. Axes are kept in file order, which is NRRD's
fastest-first order, so the arrays are ``(i, j, k)`` like NIfTI. LPS worlds
are converted to RAS+ by negating x and y.

The header is read and checked (sizes, geometry) before any voxel data, and
every failure is reported as :class:`~portal.imaging.errors.ImagingError`
naming the file.
"""

from __future__ import annotations

import bz2
import logging
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from portal.imaging.errors import ImagingError, exception_text
from portal.imaging.labels import Label, default_label_table
from portal.imaging.nifti import DEFAULT_MAX_VOXELS, MAX_LABEL_VALUE
from portal.imaging.volume import LPS_TO_RAS, Volume

__all__ = ["nrrd_data_file", "nrrd_stem", "read_nrrd", "read_seg_nrrd"]

logger = logging.getLogger(__name__)

# Sign flips from each supported NRRD world frame to RAS+.
_SPACE_TO_RAS = {
    "right-anterior-superior": np.eye(4),
    "ras": np.eye(4),
    "left-posterior-superior": LPS_TO_RAS,
    "lps": LPS_TO_RAS,
    "left-anterior-superior": np.diag([-1.0, 1.0, 1.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 1.0, 1.0]),
}

# Shortest direction vector accepted, in mm (a zero column makes the grid degenerate).
_MIN_STEP_MM = 1e-6

# Encodings pynrrd decodes, by the names the NRRD format allows.
_ENCODINGS = frozenset({"raw", "ascii", "text", "txt", "gzip", "gz", "bzip2", "bz2"})
_INFLATE_CHUNK_BYTES = 1024 * 1024


def nrrd_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.seg.nrrd``, ``.nrrd`` or ``.nhdr``.

    Examples
    --------
    >>> nrrd_stem("/data/Segmentation.seg.nrrd"), nrrd_stem("ct.nhdr")
    ('Segmentation', 'ct')
    """
    name = Path(path).name
    for suffix in (".seg.nrrd", ".nrrd", ".nhdr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _read_errors() -> tuple[type[BaseException], ...]:
    import nrrd

    return (nrrd.NRRDError, OSError, EOFError, ValueError, TypeError, KeyError, zlib.error)


def _read_header(path: Path) -> dict[str, Any]:
    import nrrd

    if not path.is_file():
        raise ImagingError(path, "file does not exist")
    try:
        with path.open("rb") as fh:
            return dict(nrrd.read_header(fh))
    except _read_errors() as exc:
        raise ImagingError(path, f"not a readable NRRD file ({exception_text(exc, path)})") from exc


def _check_encoding(path: Path, header: Mapping[str, Any]) -> np.dtype:
    """The voxel dtype as stored, refusing encodings and types pynrrd cannot decode."""
    from nrrd.reader import _TYPEMAP_NRRD2NUMPY

    encoding = str(header.get("encoding", ""))
    if encoding.lower() not in _ENCODINGS:
        raise ImagingError(
            path, f"encoding {encoding!r} is not supported (raw, ascii, gzip or bzip2)"
        )
    type_name = str(header.get("type", ""))
    if type_name not in _TYPEMAP_NRRD2NUMPY:
        raise ImagingError(path, f"voxel type {type_name!r} is not supported")
    return np.dtype(_TYPEMAP_NRRD2NUMPY[type_name])


def _data_file(path: Path, header: Mapping[str, Any]) -> Path | None:
    """The detached data file named in the header, which must sit beside or below it.

    A header naming ``../x`` or ``/etc/x`` would otherwise read any file the server can.
    """
    name = header.get("data file", header.get("datafile"))
    if name is None:
        return None
    name = str(name).strip()
    if name.upper().startswith("LIST") or len(name.split()) > 1:
        raise ImagingError(path, f"multi-file NRRD data ({name!r}) is not supported")
    relative = Path(name)
    folder = path.parent.resolve()
    target = (folder / relative).resolve()
    if relative.is_absolute() or ".." in relative.parts or not target.is_relative_to(folder):
        raise ImagingError(path, f"data file {name!r} is outside the header's folder")
    if not target.is_file():
        raise ImagingError(path, f"data file {name!r} named in the header does not exist")
    return target


def nrrd_data_file(path: str | os.PathLike[str]) -> Path | None:
    """The detached data file of a NRRD header (``.nhdr``), or None for attached data.

    Raises
    ------
    ImagingError
        If the header cannot be read, or names a data file that is missing, outside
        the header's folder, or a multi-file list.
    """
    path = Path(path)
    return _data_file(path, _read_header(path))


def _check_inflated_size(path: Path, header: Mapping[str, Any], dtype: np.dtype) -> None:
    """Refuse compressed voxel data that inflates to more than the header declares.

    pynrrd inflates the whole stream in memory before it compares sizes, so a few MB of
    compressed zeros would cost GBs; here the stream is inflated in chunks that are
    dropped at once, and reading stops at the first byte over the declared size.
    """
    import nrrd

    encoding = str(header.get("encoding", "")).lower()
    if encoding not in ("gzip", "gz", "bzip2", "bz2"):
        return
    sizes = [int(n) for n in header.get("sizes", ())]
    declared = int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
    byte_skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    limit = declared + max(byte_skip, 0)
    detached = _data_file(path, header)
    inflated = 0
    try:
        with (detached or path).open("rb") as fh:
            if detached is None:
                nrrd.read_header(fh)  # positions fh at the attached data
            for _ in range(max(int(header.get("line skip", header.get("lineskip", 0)) or 0), 0)):
                fh.readline()
            if encoding in ("gzip", "gz"):
                zinflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
                while (chunk := fh.read(_INFLATE_CHUNK_BYTES)) and not zinflater.eof:
                    while chunk and inflated <= limit:
                        inflated += len(zinflater.decompress(chunk, _INFLATE_CHUNK_BYTES))
                        chunk = zinflater.unconsumed_tail
                    if inflated > limit:
                        break
            else:
                binflater = bz2.BZ2Decompressor()
                while (chunk := fh.read(_INFLATE_CHUNK_BYTES)) and not binflater.eof:
                    inflated += len(binflater.decompress(chunk, _INFLATE_CHUNK_BYTES))
                    while not binflater.needs_input and not binflater.eof and inflated <= limit:
                        inflated += len(binflater.decompress(b"", _INFLATE_CHUNK_BYTES))
                    if inflated > limit:
                        break
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ImagingError(
            path, f"corrupt compressed voxel data ({exception_text(exc, path)})"
        ) from exc
    if inflated > limit:
        raise ImagingError(
            path,
            f"compressed voxel data inflates to more data than the {limit} bytes the header "
            "declares; refusing a possible decompression bomb",
        )


def _spatial_axes(path: Path, header: Mapping[str, Any]) -> list[int]:
    """Indices of the axes that have a world direction (three of them)."""
    ndim = int(header.get("dimension", len(header.get("sizes", ()))))
    directions = header.get("space directions")
    if directions is None:
        axes = list(range(ndim))
    else:
        rows = np.asarray(directions, dtype=np.float64).reshape(ndim, -1)
        axes = [n for n in range(ndim) if np.all(np.isfinite(rows[n]))]
    if len(axes) != 3:
        raise ImagingError(
            path, f"expected 3 spatial axes, header declares {len(axes)} of {ndim} axes"
        )
    return axes


def _check_sizes(path: Path, header: Mapping[str, Any], max_voxels: int) -> list[int]:
    """Declared sizes, refused when the 3-D grid or the whole array is too large."""
    sizes = [int(n) for n in header.get("sizes", ())]
    axes = _spatial_axes(path, header)
    if len(sizes) != int(header.get("dimension", len(sizes))) or min(sizes, default=0) < 1:
        raise ImagingError(path, f"invalid sizes {sizes} in the header")
    n_voxels = int(np.prod([sizes[n] for n in axes], dtype=np.int64))
    n_values = int(np.prod(sizes, dtype=np.int64))
    if max(n_voxels, n_values) > max_voxels:
        raise ImagingError(
            path,
            f"declared size {tuple(sizes)} is {n_values} values, "
            f"more than the limit of {max_voxels}",
        )
    return sizes


def _affine_ras(path: Path, header: Mapping[str, Any]) -> np.ndarray:
    """Voxel ``(i, j, k)`` of the spatial axes to RAS+ mm."""
    axes = _spatial_axes(path, header)
    space = str(header.get("space", "")).strip().lower()
    directions = header.get("space directions")
    affine = np.eye(4)
    if directions is None:
        # No world frame at all: a plain grid with the declared spacings.
        spacings = np.asarray(header.get("spacings", [1.0] * 3), dtype=np.float64)
        affine[:3, :3] = np.diag(np.nan_to_num(spacings[axes], nan=1.0))
        logger.debug("%s has no space directions; assuming an axis-aligned RAS grid", path)
        return affine
    if space not in _SPACE_TO_RAS:
        raise ImagingError(path, f"unsupported NRRD space {header.get('space')!r}")
    rows = np.asarray(directions, dtype=np.float64)
    vectors = rows[axes]
    if vectors.shape != (3, 3):
        raise ImagingError(path, f"space directions must be 3-D vectors, got {vectors.shape}")
    lengths = np.linalg.norm(vectors, axis=1)
    if np.min(lengths) < _MIN_STEP_MM:
        axis = axes[int(np.argmin(lengths))]
        raise ImagingError(path, f"space directions has a zero-length vector for axis {axis}")
    if abs(np.linalg.det(vectors)) < _MIN_STEP_MM * float(np.prod(lengths)):
        raise ImagingError(path, "space directions are linearly dependent (degenerate grid)")
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise ImagingError(path, f"space origin must be 3 numbers, got {origin!r}")
    affine[:3, :3] = vectors.T
    affine[:3, 3] = origin
    return _SPACE_TO_RAS[space] @ affine


def _read_data(path: Path, header: Mapping[str, Any]) -> np.ndarray:
    """All voxel values in file axis order, native byte order."""
    import nrrd

    dtype = _check_encoding(path, header)
    _data_file(path, header)
    _check_inflated_size(path, header, dtype)
    try:
        with path.open("rb") as fh:
            nrrd.read_header(fh)  # positions fh at the data of an attached header
            data = nrrd.read_data(dict(header), fh, str(path), index_order="F")
    except _read_errors() as exc:
        raise ImagingError(
            path, f"truncated or corrupt voxel data ({exception_text(exc, path)})"
        ) from exc
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise ImagingError(path, f"voxel type {data.dtype} is not supported")
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    return data


def _spatial_last(path: Path, header: Mapping[str, Any], data: np.ndarray) -> np.ndarray:
    """Move non-spatial axes to the front: shape ``(..., i, j, k)``."""
    axes = _spatial_axes(path, header)
    others = [n for n in range(data.ndim) if n not in axes]
    return np.transpose(data, [*others, *axes])


def read_nrrd(
    path: str | os.PathLike[str],
    *,
    modality: str = "MR",
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Volume:
    """Read a ``.nrrd`` (or detached ``.nhdr``) image.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    modality : str
        DICOM modality code to record; NRRD does not store one.
    max_voxels : int
        Refuse files whose declared number of values is larger. Checked
        before reading voxel data.

    Returns
    -------
    Volume
        The stored dtype, axes ``(i, j, k)`` in file order; for files with a
        non-spatial axis (time, list) the first entry along it.

    Raises
    ------
    ImagingError
        If the file is missing, not NRRD, truncated, too large, or its
        geometry is unsupported or degenerate; if its detached data file is
        missing or outside its folder; if its compressed data inflates to more
        than the header declares (checked while inflating, chunk by chunk).

    Examples
    --------
    >>> import tempfile, nrrd, numpy as np
    >>> path = tempfile.mkdtemp() + "/ct.nrrd"
    >>> header = {"space": "left-posterior-superior", "space origin": [10.0, 20.0, 30.0],
    ...           "space directions": np.diag([0.5, 0.5, 2.0])}
    >>> nrrd.write(path, np.zeros((4, 5, 6), np.int16), header)
    >>> vol = read_nrrd(path)
    >>> vol.shape, vol.orientation, vol.affine_ras[:3, 3].tolist()
    ((4, 5, 6), 'LPS', [-10.0, -20.0, 30.0])
    """
    path = Path(path)
    header = _read_header(path)
    _check_sizes(path, header, max_voxels)
    affine = _affine_ras(path, header)
    data = _spatial_last(path, header, _read_data(path, header))
    if data.ndim > 3:
        logger.debug("%s has shape %s; using the first 3-D volume", path, data.shape)
        data = data.reshape((-1, *data.shape[-3:]))[0]
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return Volume(np.ascontiguousarray(data), affine, modality, nrrd_stem(path))


def _segments(path: Path, header: Mapping[str, Any], n_layers: int) -> list[dict[str, Any]]:
    """Slicer segment metadata ``SegmentN_*`` as dicts, in segment order."""
    indices = sorted({int(key[7:].split("_", 1)[0]) for key in header if _is_segment_key(key)})
    segments = []
    one_per_layer = n_layers > 1 and n_layers == len(indices)
    for pos, n in enumerate(indices):
        prefix = f"Segment{n}_"
        try:
            color = tuple(float(c) for c in str(header.get(prefix + "Color", "")).split())
            default_layer = pos if one_per_layer else 0
            layer = int(header.get(prefix + "Layer", default_layer))
            value = int(header.get(prefix + "LabelValue", 1 if one_per_layer else pos + 1))
        except ValueError as exc:
            raise ImagingError(path, f"unreadable metadata of segment {n} ({exc})") from exc
        if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
            color = ()
        if not 0 <= layer < n_layers or not 1 <= value <= MAX_LABEL_VALUE:
            raise ImagingError(path, f"segment {n} has layer {layer} and label value {value}")
        name = str(header.get(prefix + "Name", "")) or f"segment {n}"
        segments.append({"name": name, "color": color, "layer": layer, "value": value})
    return segments


def _is_segment_key(key: str) -> bool:
    head = key.split("_", 1)[0]
    return head.startswith("Segment") and head[7:].isdigit() and "_" in key


def _as_labels(path: Path, data: np.ndarray) -> np.ndarray:
    if data.size and data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
        raise ImagingError(path, "label values must be whole numbers")
    if data.size and (data.min() < 0 or data.max() > MAX_LABEL_VALUE):
        raise ImagingError(path, f"label values must be in 0..{MAX_LABEL_VALUE}")
    return data.astype(np.uint16)


def read_seg_nrrd(
    path: str | os.PathLike[str], *, max_voxels: int = DEFAULT_MAX_VOXELS
) -> tuple[np.ndarray, np.ndarray, list[Label]]:
    """Read a 3D Slicer segmentation (``.seg.nrrd``) or a plain NRRD label map.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_voxels : int
        Refuse files whose declared number of values (all layers) is larger.

    Returns
    -------
    labels : numpy.ndarray
        uint16 label values in ``(i, j, k)`` order, 0 meaning background.
        Slicer layers (a leading non-spatial axis) are merged into one map.
    affine_ras : numpy.ndarray
        4x4 float64 voxel-to-RAS affine in mm.
    table : list of Label
        Names and colours from ``SegmentN_Name`` and ``SegmentN_Color``
        (palette colour when absent), sorted by value. When layers are
        merged and their label values clash, segments are renumbered 1..N in
        segment order. Files without segment metadata get a default table.

    Raises
    ------
    ImagingError
        As :func:`read_nrrd`; for values that are not labels, and for layers
        whose segments overlap (not supported yet).
    """
    path = Path(path)
    header = _read_header(path)
    _check_sizes(path, header, max_voxels)
    affine = _affine_ras(path, header)
    data = _spatial_last(path, header, _read_data(path, header))
    layers = _as_labels(path, data.reshape((-1, *data.shape[-3:])))
    segments = _segments(path, header, len(layers))
    if not segments:
        if len(layers) > 1:
            raise ImagingError(path, "several layers but no segment metadata")
        return layers[0], affine, default_label_table(np.unique(layers[0]).tolist())
    values = [s["value"] for s in segments]
    renumber = len(layers) > 1 and len(set(values)) != len(values)
    out = np.zeros(layers.shape[1:], dtype=np.uint16)
    covered = np.zeros(layers.shape[1:], dtype=bool)
    table = []
    for pos, seg in enumerate(segments):
        value = pos + 1 if renumber else seg["value"]
        mask = layers[seg["layer"]] == seg["value"]
        if np.any(covered & mask):
            raise ImagingError(path, "segments overlap; overlapping layers are not supported yet")
        covered |= mask
        out[mask] = value
        color = tuple(round(255 * c) for c in seg["color"]) or default_label_table([value])[0].color
        table.append(Label(value, seg["name"], (int(color[0]), int(color[1]), int(color[2]))))
    leftover = layers.astype(bool).any(axis=0) & ~covered
    if np.any(leftover):
        raise ImagingError(path, "voxels hold label values that no segment declares")
    return out, affine, sorted(table, key=lambda lab: lab.value)
