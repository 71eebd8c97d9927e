import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from portal.imaging.errors import ImagingError
from portal.imaging.volume import LPS_TO_RAS, Volume, to_closest_canonical
from tests.support.dicom_data import read_one_series as _read
from tests.support.dicom_data import testdata as _testdata

EMRI_FAMILY = [
    "emri_small.dcm",
    "emri_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
    "emri_small_big_endian.dcm",
]


def _sitk_volume(path: Path) -> Volume:
    """SimpleITK's reading of a file as a Volume (its LPS geometry made RAS)."""
    image = sitk.ReadImage(str(path))
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return Volume(sitk.GetArrayFromImage(image).T, LPS_TO_RAS @ affine)


@pytest.mark.parametrize("name", EMRI_FAMILY)
def test_emri_family_gives_identical_volumes(name):
    reference = _read(_testdata("emri_small.dcm"))
    vol = _read(_testdata(name))
    assert vol.shape == (64, 64, 10)
    np.testing.assert_array_equal(vol.data, reference.data)
    np.testing.assert_array_equal(vol.affine_ras, reference.affine_ras)
    frames = pydicom.dcmread(_testdata(name)).pixel_array  # (frame, row, column)
    np.testing.assert_array_equal(vol.data, frames.transpose(2, 1, 0))


@pytest.mark.parametrize("name", EMRI_FAMILY)
def test_emri_family_matches_simpleitk(name):
    vol = _read(_testdata(name))
    ref = _sitk_volume(_testdata(name))
    assert vol.shape == ref.shape
    np.testing.assert_array_equal(vol.data, ref.data)
    # No plane position in these files: both readers assume an axis-aligned
    # stack at the origin. SimpleITK ignores SpacingBetweenSlices (1.2 mm)
    # and uses 1 mm between frames; we use it.
    np.testing.assert_allclose(vol.affine_ras[:, [0, 1, 3]], ref.affine_ras[:, [0, 1, 3]])
    assert ref.spacing_mm[2] == 1.0 and vol.spacing_mm[2] == pytest.approx(1.2)


def test_enhanced_ct_matches_simpleitk():
    path = _testdata("eCT_Supplemental.dcm")
    vol = _read(path)
    assert vol.shape == (512, 512, 2) and vol.modality == "CT"
    # Rescale intercept -1024 comes from the shared PixelValueTransformationSequence.
    assert int(vol.data.min()) == -1024
    ours, theirs = to_closest_canonical(vol), to_closest_canonical(_sitk_volume(path))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.affine_ras, theirs.affine_ras, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert vol.spacing_mm == pytest.approx((0.388672, 0.388672, 10.0))


def _edited_ect(tmp_path: Path, edit) -> Path:
    ds = pydicom.dcmread(_testdata("eCT_Supplemental.dcm"))
    edit(ds)
    out = tmp_path / "edited.dcm"
    ds.save_as(out)
    return out


def test_frames_are_sorted_by_position_not_stored_order(tmp_path):
    original = _read(_testdata("eCT_Supplemental.dcm"))

    def swap_positions(ds):
        first, second = ds.PerFrameFunctionalGroupsSequence
        a = first.PlanePositionSequence[0].ImagePositionPatient
        b = second.PlanePositionSequence[0].ImagePositionPatient
        first.PlanePositionSequence[0].ImagePositionPatient = b
        second.PlanePositionSequence[0].ImagePositionPatient = a

    swapped = _read(_edited_ect(tmp_path, swap_positions))
    np.testing.assert_array_equal(swapped.affine_ras, original.affine_ras)
    np.testing.assert_array_equal(swapped.data, original.data[:, :, ::-1])


def test_per_frame_orientation_and_rescale_are_used(tmp_path):
    original = _read(_testdata("eCT_Supplemental.dcm"))

    def move_to_per_frame(ds):
        shared = ds.SharedFunctionalGroupsSequence[0]
        orientation = shared.PlaneOrientationSequence
        transform = shared.PixelValueTransformationSequence
        del shared.PlaneOrientationSequence
        del shared.PixelValueTransformationSequence
        for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            item.PlaneOrientationSequence = copy.deepcopy(orientation)
            item.PixelValueTransformationSequence = copy.deepcopy(transform)
            item.PixelValueTransformationSequence[0].RescaleIntercept = -1024 + 100 * n

    vol = _read(_edited_ect(tmp_path, move_to_per_frame))
    np.testing.assert_array_equal(vol.affine_ras, original.affine_ras)
    # original.data is sorted along the normal: frame 1 comes first there.
    np.testing.assert_array_equal(vol.data[:, :, 0], original.data[:, :, 0] + 100)
    np.testing.assert_array_equal(vol.data[:, :, 1], original.data[:, :, 1])


def test_per_frame_item_count_must_match(tmp_path):
    def drop_one(ds):
        del ds.PerFrameFunctionalGroupsSequence[1]

    path = _edited_ect(tmp_path, drop_one)
    with pytest.raises(ImagingError, match="has 1 items for 2 frames") as info:
        _read(path)
    assert info.value.path == str(path)


def test_missing_position_in_a_frame_names_the_file(tmp_path):
    def drop_position(ds):
        del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence

    path = _edited_ect(tmp_path, drop_position)
    with pytest.raises(ImagingError, match="ImagePositionPatient") as info:
        _read(path)
    assert info.value.path == str(path)
