"""Serialise a voxel array as VTK XML ImageData (``.vti``) for vtk.js.

The layout is the simplest every VTK XML reader accepts, including vtk.js's
``vtkXMLImageDataReader``: one point-data array in *appended raw* encoding
with a UInt64 byte-count header, little endian, no compression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["VTK_TYPE_BY_DTYPE", "VtiImage", "read_vti_bytes", "vti_bytes"]

#: VTK XML ``type`` attribute for each numpy dtype that can be written.
VTK_TYPE_BY_DTYPE = {
    "int8": "Int8",
    "uint8": "UInt8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
    "float32": "Float32",
    "float64": "Float64",
}


def _numbers(values: Sequence[float], name: str) -> str:
    floats = [float(v) for v in values]
    if len(floats) != 3 or not all(np.isfinite(floats)):
        raise ValueError(f'Argument "{name}" must be three finite numbers, got {values!r}.')
    return " ".join(repr(v) for v in floats)


def vti_bytes(
    array: np.ndarray,
    spacing_mm: Sequence[float],
    origin_mm: Sequence[float],
    *,
    name: str = "scalars",
) -> bytes:
    """Encode an ``(i, j, k)`` or ``(i, j, k, c)`` array as a ``.vti`` file.

    Parameters
    ----------
    array : numpy.ndarray
        3-D (one component) or 4-D with components last (e.g. RGBA uint8).
        Axis ``i`` becomes VTK's x, ``j`` y and ``k`` z.
    spacing_mm : sequence of float
        Voxel size along ``i, j, k``.
    origin_mm : sequence of float
        World position of voxel ``(0, 0, 0)``.
    name : str
        Name of the point-data array, also set as the active scalars.

    Returns
    -------
    bytes
        The whole file.

    Examples
    --------
    >>> import numpy as np
    >>> payload = vti_bytes(np.zeros((2, 3, 4), np.uint8), (1, 1, 1), (0, 0, 0))
    >>> payload.splitlines()[1].decode()
    '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">'
    """
    if array.ndim not in (3, 4):
        raise ValueError(f'Argument "array" must be 3-D or 4-D, got shape {array.shape}.')
    dtype = array.dtype.newbyteorder("=")
    vtk_type = VTK_TYPE_BY_DTYPE.get(dtype.name)
    if vtk_type is None:
        raise ValueError(f'Argument "array" has dtype {array.dtype} that VTK XML cannot hold.')
    if not name or any(c in name for c in '<>&"'):
        raise ValueError(f'Argument "name" must be a plain non-empty string, got {name!r}.')
    nx, ny, nz = array.shape[:3]
    components = 1 if array.ndim == 3 else array.shape[3]
    # VTK stores points x fastest, components interleaved per point:
    # memory order (k, j, i, c) in C order is exactly that.
    axes = (2, 1, 0) if array.ndim == 3 else (2, 1, 0, 3)
    payload = np.ascontiguousarray(array.transpose(axes), dtype=dtype.newbyteorder("<")).tobytes()
    extent = f"0 {nx - 1} 0 {ny - 1} 0 {nz - 1}"
    header = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        f'  <ImageData WholeExtent="{extent}" Origin="{_numbers(origin_mm, "origin_mm")}" '
        f'Spacing="{_numbers(spacing_mm, "spacing_mm")}">\n'
        f'    <Piece Extent="{extent}">\n'
        f'      <PointData Scalars="{name}">\n'
        f'        <DataArray type="{vtk_type}" Name="{name}" '
        f'NumberOfComponents="{components}" format="appended" offset="0"/>\n'
        "      </PointData>\n"
        "      <CellData>\n"
        "      </CellData>\n"
        "    </Piece>\n"
        "  </ImageData>\n"
        # vtk.js finds the binary block with /^\s*<AppendedData encoding="raw">\s*_/m
        # and its end with /\n\s*<\/AppendedData>/, hence the exact line breaks.
        '  <AppendedData encoding="raw">\n'
        "   _"
    )
    footer = "\n  </AppendedData>\n</VTKFile>\n"
    size = np.array([len(payload)], dtype="<u8").tobytes()
    return header.encode("ascii") + size + payload + footer.encode("ascii")


@dataclass(frozen=True)
class VtiImage:
    """A decoded ``.vti``: the array in ``(i, j, k)`` or ``(i, j, k, c)`` order, with its
    voxel size and the world position of voxel ``(0, 0, 0)`` in mm."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]


_DTYPE_BY_VTK_TYPE = {
    vtk: np.dtype(name).newbyteorder("<") for name, vtk in VTK_TYPE_BY_DTYPE.items()
}
_APPENDED = b'<AppendedData encoding="raw">'


def _attribute(header: str, name: str) -> str:
    match = re.search(rf'\b{name}="([^"]*)"', header)
    if match is None:
        raise ValueError(f'Argument "payload" is not a .vti written by vti_bytes: no {name}.')
    return match.group(1)


def _triple(text: str) -> tuple[float, float, float]:
    values = [float(v) for v in text.split()]
    if len(values) != 3:
        raise ValueError(f"expected three numbers, got {text!r}")
    return values[0], values[1], values[2]


def read_vti_bytes(payload: bytes) -> VtiImage:
    """Decode a ``.vti`` in the layout :func:`vti_bytes` writes (the inverse of it).

    Only that layout is read: one point-data array, appended raw, UInt64 size header,
    little endian, whole extent starting at 0.

    Examples
    --------
    >>> import numpy as np
    >>> array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> image = read_vti_bytes(vti_bytes(array, (1, 2, 3), (0, 0, 5)))
    >>> bool((image.array == array).all()), image.spacing_mm
    (True, (1.0, 2.0, 3.0))
    """
    start = payload.find(_APPENDED)
    marker = payload.find(b"_", start + len(_APPENDED)) if start >= 0 else -1
    if marker < 0:
        raise ValueError('Argument "payload" is not a .vti written by vti_bytes.')
    header = payload[:start].decode("ascii")
    x1, y1, z1 = (int(v) for v in _attribute(header, "WholeExtent").split()[1::2])
    array_tag = header[header.find("<DataArray") :]
    vtk_type = _attribute(array_tag, "type")
    if vtk_type not in _DTYPE_BY_VTK_TYPE:
        raise ValueError(f'Argument "payload" holds VTK type {vtk_type!r} that is not read.')
    dtype = _DTYPE_BY_VTK_TYPE[vtk_type]
    components = int(_attribute(array_tag, "NumberOfComponents"))
    size = int(np.frombuffer(payload, "<u8", count=1, offset=marker + 1)[0])
    shape = (z1 + 1, y1 + 1, x1 + 1) + ((components,) if components > 1 else ())
    if size != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f'Argument "payload" holds {size} bytes, not an array of {shape}.')
    data = np.frombuffer(payload, dtype, count=size // dtype.itemsize, offset=marker + 9)
    # Stored x fastest, i.e. (k, j, i[, c]) in C order: back to (i, j, k[, c]).
    axes = (2, 1, 0) if components == 1 else (2, 1, 0, 3)
    array = np.ascontiguousarray(data.reshape(shape).transpose(axes)).astype(
        dtype.newbyteorder("=")
    )
    return VtiImage(
        array=array,
        spacing_mm=_triple(_attribute(header, "Spacing")),
        origin_mm=_triple(_attribute(header, "Origin")),
    )
