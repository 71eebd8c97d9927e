import gzip

import nibabel as nib
import numpy as np
import pytest

from portal.imaging.errors import ImagingError
from portal.imaging.nifti import read_label_nifti, read_nifti, write_nifti

from .conftest import NIBABEL_DATA


def test_anatomical_matches_nibabel():
    path = NIBABEL_DATA / "anatomical.nii"
    vol = read_nifti(path)
    img = nib.load(path)
    np.testing.assert_array_equal(vol.data, img.get_fdata())
    np.testing.assert_array_equal(vol.affine_ras, img.affine)
    assert vol.description == "anatomical" and vol.modality == "MR"


def test_4d_gives_first_volume():
    path = NIBABEL_DATA / "example4d.nii.gz"
    img = nib.load(path)
    assert len(img.shape) == 4
    vol = read_nifti(path)
    np.testing.assert_allclose(vol.data, img.get_fdata()[..., 0], rtol=1e-6)
    assert vol.shape == img.shape[:3]


def test_mni_template_matches_nibabel(mni_1mm):
    vol = read_nifti(mni_1mm.image_paths[0])
    img = nib.load(mni_1mm.image_paths[0])
    assert vol.data.dtype == np.int16  # unscaled integer data keeps its dtype
    np.testing.assert_array_equal(vol.data, img.get_fdata())
    np.testing.assert_array_equal(vol.affine_ras, img.affine)
    assert vol.shape == (197, 233, 189) and vol.orientation == "RAS"


def test_scaled_integers_become_float32(tmp_path):
    img = nib.Nifti1Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    img.header.set_slope_inter(0.5, -1.0)
    nib.save(img, tmp_path / "s.nii")
    vol = read_nifti(tmp_path / "s.nii")
    assert vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data.ravel(), np.arange(8) * 0.5 - 1.0)


def test_nan_and_inf_become_zero(tmp_path):
    data = np.array([np.nan, np.inf, -np.inf, 2.5, 0, 0, 0, 0], np.float32).reshape(2, 2, 2)
    write_nifti(tmp_path / "n.nii.gz", data, np.eye(4))
    vol = read_nifti(tmp_path / "n.nii.gz")
    assert vol.data.ravel().tolist()[:4] == [0.0, 0.0, 0.0, 2.5]


def test_complex_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "complex.nii"
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.complex64), np.eye(4)), path)
    with pytest.raises(ImagingError, match="complex") as info:
        read_nifti(path)
    assert info.value.path == str(path)


def test_truncated_gz_is_refused_naming_the_file(tmp_path, mni_1mm):
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(mni_1mm.image_paths[0].read_bytes()[:50_000])
    with pytest.raises(ImagingError) as info:
        read_nifti(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ImagingError, match="does not exist"):
        read_nifti(tmp_path / "nope.nii")
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"not a nifti header at all" * 10))
    with pytest.raises(ImagingError) as info:
        read_nifti(garbage)
    assert info.value.path == str(garbage)


def test_huge_declared_shape_refused_before_reading(tmp_path):
    # A 348-byte header claiming 30000^3 voxels with almost no data behind it:
    # refusing it must not depend on reading (or allocating) the voxels.
    header = nib.Nifti1Header()
    header.set_data_shape((30_000, 30_000, 30_000))
    header.set_data_dtype(np.float32)
    path = tmp_path / "huge.nii"
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 64)
    with pytest.raises(ImagingError, match="more than the limit") as info:
        read_nifti(path)
    assert info.value.path == str(path)
    with pytest.raises(ImagingError, match="more than the limit"):
        read_nifti(NIBABEL_DATA / "anatomical.nii", max_voxels=100)


def test_label_reading(tmp_path, mni_1mm):
    labels, affine = read_label_nifti(mni_1mm.label_path)
    assert labels.dtype == np.uint16
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(affine, nib.load(mni_1mm.image_paths[0]).affine)
    whole_floats = np.array([0, 1, 2, 3, 0, 0, 0, 0], np.float32).reshape(2, 2, 2)
    write_nifti(tmp_path / "f.nii.gz", whole_floats, np.eye(4))
    np.testing.assert_array_equal(read_label_nifti(tmp_path / "f.nii.gz")[0], whole_floats)


@pytest.mark.parametrize(
    ("values", "dtype", "reason"),
    [
        ([0, -1], np.int16, "negative"),
        ([0, 1.5], np.float32, "whole numbers"),
        ([0, 70000], np.int32, "at most 65535"),
        ([0, np.nan], np.float32, "finite"),
    ],
)
def test_bad_labels_are_refused(tmp_path, values, dtype, reason):
    data = np.zeros((2, 2, 2), dtype)
    data.ravel()[: len(values)] = values
    path = write_nifti(tmp_path / "bad-label.nii.gz", data, np.eye(4))
    with pytest.raises(ImagingError, match=reason) as info:
        read_label_nifti(path)
    assert info.value.path == str(path)


def test_write_nifti_round_trip(tmp_path):
    affine = np.array([[0, -2.0, 0, 5], [1.5, 0, 0, -3], [0, 0, 3, 7], [0, 0, 0, 1]])
    data = np.random.default_rng(1).integers(-500, 500, (4, 5, 6)).astype(np.int16)
    path = write_nifti(tmp_path / "sub" / "w.nii.gz", data, affine)
    vol = read_nifti(path)
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine_ras, affine)
    img = nib.load(path)
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
