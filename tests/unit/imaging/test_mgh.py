import gzip

import nibabel as nib
import numpy as np
import pytest

from portal.imaging.errors import ImagingError
from portal.imaging.mgh import read_mgh

from .conftest import NIBABEL_DATA

TEST_MGZ = NIBABEL_DATA / "test.mgz"


def test_test_mgz_matches_nibabel():
    vol = read_mgh(TEST_MGZ)
    img = nib.load(TEST_MGZ)
    assert len(img.shape) == 4  # the reader must pick the first frame
    assert vol.shape == tuple(int(n) for n in img.shape[:3])
    np.testing.assert_allclose(vol.affine_ras, img.affine, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(vol.data, img.get_fdata()[..., 0])
    assert vol.data.dtype == np.float32 and vol.data.dtype.isnative
    assert vol.description == "test" and vol.modality == "MR"


def test_matches_simpleitk_when_it_reads_mgz():
    sitk = pytest.importorskip("SimpleITK")
    try:
        image = sitk.ReadImage(str(TEST_MGZ))
    except RuntimeError:
        pytest.skip("this SimpleITK build has no MGH/MGZ reader")
    vol = read_mgh(TEST_MGZ)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * np.array(image.GetSpacing())
    affine_lps[:3, 3] = image.GetOrigin()
    np.testing.assert_allclose(
        vol.affine_ras, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps, atol=1e-4
    )
    np.testing.assert_array_equal(vol.data, sitk.GetArrayFromImage(image).T[..., 0])


def test_uncompressed_mgh_and_int_data_round_trip(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    affine = np.array([[-1.0, 0, 0, 10], [0, 0, 1.5, -20], [0, -2.0, 0, 30], [0, 0, 0, 1]])
    path = tmp_path / "labels.mgh"
    nib.save(nib.MGHImage(data, affine), path)
    vol = read_mgh(path)
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine_ras, affine, atol=1e-4)
    assert vol.data.dtype == np.int32 and vol.description == "labels"


def test_truncated_file_names_the_file(tmp_path):
    raw = gzip.decompress(TEST_MGZ.read_bytes())
    path = tmp_path / "cut.mgz"
    # 284-byte header, then the first frame (60 float32): cut inside it.
    path.write_bytes(gzip.compress(raw[: 284 + 100]))
    with pytest.raises(ImagingError) as info:
        read_mgh(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_not_mgh_and_missing(tmp_path):
    path = tmp_path / "x.mgz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ImagingError, match="x.mgz"):
        read_mgh(path)
    with pytest.raises(ImagingError, match="does not exist"):
        read_mgh(tmp_path / "missing.mgz")


def test_declared_size_checked_before_reading():
    with pytest.raises(ImagingError, match="more than the limit of 10"):
        read_mgh(TEST_MGZ, max_voxels=10)
