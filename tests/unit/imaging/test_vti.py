import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOXML import vtkXMLImageDataReader

from portal.imaging.vti import vti_bytes


def _read(payload: bytes):
    reader = vtkXMLImageDataReader()
    reader.ReadFromInputStringOn()
    reader.SetInputString(payload)
    reader.Update()
    return reader.GetOutput()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
def test_scalar_round_trip_through_vtk(dtype):
    rng = np.random.default_rng(3)
    array = rng.integers(0, 250, (5, 6, 7)).astype(dtype)
    image = _read(vti_bytes(array, (0.5, 1.25, 3.0), (-10.0, 20.5, 7.0), name="grey"))
    assert image.GetDimensions() == (5, 6, 7)
    assert image.GetSpacing() == (0.5, 1.25, 3.0)
    assert image.GetOrigin() == (-10.0, 20.5, 7.0)
    scalars = image.GetPointData().GetScalars()
    assert scalars.GetName() == "grey" and scalars.GetNumberOfComponents() == 1
    values = vtk_to_numpy(scalars)
    assert values.dtype == np.dtype(dtype)
    for ijk in [(0, 0, 0), (4, 0, 0), (0, 5, 0), (0, 0, 6), (3, 2, 5), (4, 5, 6)]:
        assert values[image.ComputePointId(ijk)] == array[ijk]


def test_rgba_round_trip_through_vtk():
    array = np.zeros((3, 4, 2, 4), np.uint8)
    array[2, 1, 1] = (10, 20, 30, 40)
    array[0, 3, 0] = (1, 2, 3, 4)
    image = _read(vti_bytes(array, (1, 1, 1), (0, 0, 0)))
    scalars = image.GetPointData().GetScalars()
    assert scalars.GetNumberOfComponents() == 4
    values = vtk_to_numpy(scalars)
    assert values[image.ComputePointId((2, 1, 1))].tolist() == [10, 20, 30, 40]
    assert values[image.ComputePointId((0, 3, 0))].tolist() == [1, 2, 3, 4]
    assert values.sum() == 110


def test_layout_that_vtkjs_expects():
    payload = vti_bytes(np.zeros((2, 2, 2), np.uint8), (1, 1, 1), (0, 0, 0))
    head, _, rest = payload.partition(b'<AppendedData encoding="raw">\n   _')
    assert b'header_type="UInt64"' in head and b'format="appended" offset="0"' in head
    assert int.from_bytes(rest[:8], "little") == 8
    assert rest[8 + 8 :] == b"\n  </AppendedData>\n</VTKFile>\n"


def test_refuses_bad_input():
    with pytest.raises(ValueError):
        vti_bytes(np.zeros((2, 2)), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError):
        vti_bytes(np.zeros((2, 2, 2), np.complex64), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError):
        vti_bytes(np.zeros((2, 2, 2)), (1, 1), (0, 0, 0))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7) - 100,
        np.arange(3 * 4 * 2 * 4, dtype=np.uint8).reshape(3, 4, 2, 4),
    ],
)
def test_read_vti_bytes_inverts_vti_bytes(array):
    from portal.imaging.vti import read_vti_bytes

    image = read_vti_bytes(vti_bytes(array, (0.5, 1.25, 3.0), (-10.0, 20.5, 7.0)))
    assert image.array.dtype == array.dtype and image.array.shape == array.shape
    assert (image.array == array).all()
    assert image.spacing_mm == (0.5, 1.25, 3.0) and image.origin_mm == (-10.0, 20.5, 7.0)
    with pytest.raises(ValueError, match="not a .vti"):
        read_vti_bytes(b"<VTKFile/>")
