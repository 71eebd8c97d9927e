import itertools

import nibabel as nib
import numpy as np
import pytest

from portal.imaging.errors import ImagingError
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.volume import (
    Volume,
    check_same_grid,
    reorient_labels_like,
    to_closest_canonical,
)


def _affine(perm, signs, spacing=(1.0, 2.0, 3.0), origin=(10.0, -20.0, 30.0)):
    affine = np.eye(4)
    affine[:3, :3] = 0
    for voxel_axis, (world_axis, sign) in enumerate(zip(perm, signs, strict=True)):
        affine[world_axis, voxel_axis] = sign * spacing[voxel_axis]
    affine[:3, 3] = origin
    return affine


ALL_ORIENTATIONS = [
    (perm, signs)
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((1, -1), repeat=3)
]


def test_properties():
    vol = Volume(np.zeros((4, 5, 6), np.int16), _affine((0, 1, 2), (-1, 1, 1)), "CT", "x")
    assert vol.shape == (4, 5, 6)
    assert vol.spacing_mm == (1.0, 2.0, 3.0)
    assert vol.orientation == "LAS"
    assert vol.dtype == "int16"
    assert vol.affine_ras.dtype == np.float64


@pytest.mark.parametrize(("perm", "signs"), ALL_ORIENTATIONS)
def test_closest_canonical_matches_nibabel(perm, signs):
    data = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    affine = _affine(perm, signs)
    expected = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    canonical = to_closest_canonical(Volume(data, affine))
    assert canonical.orientation == "RAS"
    np.testing.assert_array_equal(canonical.data, np.asanyarray(expected.dataobj))
    np.testing.assert_allclose(canonical.affine_ras, expected.affine)
    labels = reorient_labels_like(data.astype(np.uint16), affine)
    np.testing.assert_array_equal(labels, canonical.data)


def test_canonical_keeps_world_position_of_each_voxel():
    data = np.random.default_rng(0).integers(0, 100, (3, 4, 5)).astype(np.int16)
    affine = _affine((2, 0, 1), (-1, 1, -1))
    canonical = to_closest_canonical(Volume(data, affine))
    inverse = np.linalg.inv(canonical.affine_ras)
    for ijk in [(0, 0, 0), (2, 3, 4), (1, 2, 3)]:
        world = affine @ (*ijk, 1)
        new_ijk = np.rint(inverse @ world)[:3].astype(int)
        assert canonical.data[tuple(new_ijk)] == data[ijk]


def test_canonical_returns_ras_input_unchanged():
    vol = Volume(np.zeros((2, 2, 2), np.uint8), np.eye(4))
    assert to_closest_canonical(vol) is vol


def test_las_file_gives_same_canonical_data_as_ras_file(studies_by_name):
    ras = studies_by_name["MNI152 T1 1mm"]
    las = studies_by_name["MNI152 T1 1mm (LAS on disk)"]
    ras_vol, las_vol = read_nifti(ras.image_paths[0]), read_nifti(las.image_paths[0])
    assert (ras_vol.orientation, las_vol.orientation) == ("RAS", "LAS")
    assert np.linalg.det(las_vol.affine_ras[:3, :3]) < 0  # left-handed voxel order
    ras_c, las_c = to_closest_canonical(ras_vol), to_closest_canonical(las_vol)
    np.testing.assert_array_equal(ras_c.data, las_c.data)
    np.testing.assert_allclose(ras_c.affine_ras, las_c.affine_ras)
    ras_labels, _ = read_label_nifti(ras.label_path)
    las_labels, las_affine = read_label_nifti(las.label_path)
    np.testing.assert_array_equal(reorient_labels_like(las_labels, las_affine), ras_labels)


def test_check_same_grid_accepts_tiny_differences():
    check_same_grid(np.eye(4), (2, 3, 4), np.eye(4) + 1e-5, (2, 3, 4), path="l.nii")


def test_check_same_grid_reports_numbers():
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    with pytest.raises(ImagingError) as info:
        check_same_grid(np.eye(4), (2, 3, 4), shifted, (2, 3, 5), path="l.nii.gz")
    message = str(info.value)
    assert message.startswith("l.nii.gz: ")
    assert "(2, 3, 5)" in message and "(2, 3, 4)" in message and "0.5 mm" in message


def test_volume_rejects_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        Volume(np.zeros((2, 2, 2)), np.eye(3))
    with pytest.raises(ValueError, match="numeric"):
        Volume(np.zeros((2, 2, 2), np.complex64), np.eye(4))
