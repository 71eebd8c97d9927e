import logging
import random
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from portal.imaging.dicom import (
    DicomSeries,
    find_dicom_series,
    read_dicom_series,
    write_dicom_series,
)
from portal.imaging.errors import ImagingError
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.volume import Volume, check_same_grid, to_closest_canonical
from tests.support.dicom_data import testdata as _testdata


def _write(volume: Volume, folder: Path, **kwargs) -> DicomSeries:
    write_dicom_series(
        volume,
        folder,
        patient_name="Test^Patient",
        study_description="study",
        series_description=kwargs.pop("series_description", "series"),
        **kwargs,
    )
    (series,) = find_dicom_series([folder])
    return series


@pytest.fixture(scope="module")
def mni_volume(mni_1mm) -> Volume:
    return read_nifti(mni_1mm.image_paths[0])


@pytest.fixture(scope="module")
def mni_crop(mni_volume) -> Volume:
    """A 40 x 36 x 12 block through the middle of the brain, with its own affine."""
    start = np.array([78, 98, 88])
    affine = mni_volume.affine_ras.copy()
    affine[:3, 3] = (affine @ (*start, 1))[:3]
    data = mni_volume.data[78:118, 98:134, 88:100]
    return Volume(np.ascontiguousarray(data), affine, "MR", "crop")


def test_demo_series_matches_source_nifti(studies_by_name, mni_1mm):
    study = studies_by_name["MNI152 T1 1mm (DICOM)"]
    (series,) = find_dicom_series(study.image_paths)
    assert len(series.paths) == 189
    assert (series.modality, series.description) == ("MR", "MNI152 T1 1mm")
    volume = read_dicom_series(series)
    source = nib.load(mni_1mm.image_paths[0])
    np.testing.assert_allclose(volume.affine_ras, source.affine, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(volume.data, source.get_fdata())
    assert volume.data.dtype == np.int16
    labels, label_affine = read_label_nifti(study.label_path)
    check_same_grid(
        volume.affine_ras, volume.shape, label_affine, labels.shape, path=study.label_path
    )


def test_file_order_is_irrelevant(studies_by_name):
    (series,) = find_dicom_series(studies_by_name["MNI152 T1 1mm (DICOM)"].image_paths)
    # File names must not already be in slice order, or the sort is untested.
    instance_numbers = [
        int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in series.paths
    ]
    assert instance_numbers != sorted(instance_numbers)
    expected = read_dicom_series(series)
    shuffled = list(series.paths)
    random.Random(7).shuffle(shuffled)
    again = read_dicom_series(DicomSeries(series.series_uid, shuffled, "MR", ""))
    np.testing.assert_array_equal(again.data, expected.data)
    np.testing.assert_array_equal(again.affine_ras, expected.affine_ras)


def test_instance_numbers_are_not_used_for_order(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    for path in series.paths:  # scramble InstanceNumber
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = 1000 - int(ds.InstanceNumber) * 7 % 13
        ds.save_as(path)
    volume = read_dicom_series(series)
    np.testing.assert_array_equal(volume.data, mni_crop.data)


def test_single_slice_series(tmp_path, mni_crop):
    one = Volume(mni_crop.data[:, :, 5:6], mni_crop.affine_ras, "MR", "one")
    volume = read_dicom_series(_write(one, tmp_path / "one"))
    np.testing.assert_array_equal(volume.data, one.data)
    np.testing.assert_allclose(volume.affine_ras, one.affine_ras, atol=1e-4, rtol=0)


def test_oblique_acquisition_round_trips(tmp_path, mni_crop):
    angle = np.deg2rad(20.0)
    axis = np.array([1.0, 1.0, 0.5]) / np.linalg.norm([1.0, 1.0, 0.5])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    affine = mni_crop.affine_ras.copy()
    affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 2.5])
    oblique = Volume(mni_crop.data, affine, "MR", "oblique")
    volume = read_dicom_series(_write(oblique, tmp_path / "oblique"))
    np.testing.assert_allclose(volume.affine_ras, affine, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(volume.data, oblique.data)
    ds = pydicom.dcmread(_write(oblique, tmp_path / "again").paths[0])
    assert abs(float(ds.SliceThickness) - 2.5) < 1e-6


def test_left_handed_volume_is_written_with_slices_reversed(tmp_path, mni_crop):
    flipped = mni_crop.affine_ras @ np.diag([1.0, 1.0, -1.0, 1.0])
    lhs = Volume(mni_crop.data, flipped, "MR", "lhs")
    volume = read_dicom_series(_write(lhs, tmp_path / "lhs"))
    np.testing.assert_array_equal(volume.data, mni_crop.data[:, :, ::-1])
    np.testing.assert_allclose(
        to_closest_canonical(volume).affine_ras,
        to_closest_canonical(lhs).affine_ras,
        atol=1e-4,
        rtol=0,
    )


def test_float_data_is_stored_with_rescale(tmp_path, mni_crop):
    values = mni_crop.data.astype(np.float32) * 0.37 - 12.5
    volume = read_dicom_series(_write(Volume(values, mni_crop.affine_ras), tmp_path / "f"))
    ds = pydicom.dcmread(find_dicom_series([tmp_path / "f"])[0].paths[0])
    assert float(ds.RescaleSlope) != 1.0
    assert volume.data.dtype == np.float32
    np.testing.assert_allclose(volume.data, values, atol=float(ds.RescaleSlope))
    integral = mni_crop.data.astype(np.float64) + 40_000  # whole but beyond int16
    exact = read_dicom_series(_write(Volume(integral, mni_crop.affine_ras), tmp_path / "i"))
    np.testing.assert_array_equal(exact.data, integral)


def test_written_files_are_valid_storage_objects(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "ct", modality="CT")
    ds = pydicom.dcmread(series.paths[0])
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == CTImageStorage
    assert (ds.Rows, ds.Columns) == (36, 40)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
    assert read_dicom_series(series).modality == "CT"
    mr = pydicom.dcmread(_write(mni_crop, tmp_path / "mr").paths[0])
    assert mr.SOPClassUID == MRImageStorage and "RescaleSlope" not in mr
    with pytest.raises(ValueError, match="modality"):
        write_dicom_series(
            mni_crop,
            tmp_path / "x",
            patient_name="a",
            study_description="b",
            series_description="c",
            modality="US",
        )


def test_ct_small_matches_pydicom_modality_lut():
    path = _testdata("CT_small.dcm")
    (series,) = find_dicom_series([path])
    volume = read_dicom_series(series)
    ds = pydicom.dcmread(path)
    expected = apply_modality_lut(ds.pixel_array, ds)
    assert volume.shape == (128, 128, 1)
    assert volume.data.dtype == np.int16
    # Stored frames are (row, column) = (j, i).
    np.testing.assert_array_equal(volume.data[:, :, 0], expected.T)
    lps = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(volume.affine_ras[:3, 3], lps * [-1, -1, 1])
    np.testing.assert_allclose(volume.spacing_mm, (0.661468, 0.661468, 5.0))
    assert volume.orientation == "LPS"


def test_find_skips_non_images_without_patient_data(tmp_path, caplog):
    for name in ["CT_small.dcm", "MR_small.dcm", "rtstruct.dcm", "test-SR.dcm", "no_meta.dcm"]:
        shutil.copyfile(_testdata(name), tmp_path / name)
    nested = tmp_path / "deeper" / "DICOMDIR"
    nested.parent.mkdir()
    shutil.copyfile(_testdata("DICOMDIR"), nested)
    (tmp_path / "notes.txt").write_text("not dicom")
    patient_names = {
        str(pydicom.dcmread(tmp_path / n, force=True).get("PatientName", ""))
        for n in ["CT_small.dcm", "rtstruct.dcm", "test-SR.dcm"]
    }
    with caplog.at_level(logging.INFO, logger="portal.imaging.dicom_headers"):
        found = find_dicom_series([tmp_path, tmp_path / "CT_small.dcm"])
    assert [(s.modality, [p.name for p in s.paths]) for s in found] == [
        ("CT", ["CT_small.dcm"]),
        ("MR", ["MR_small.dcm"]),
    ]
    skipped = caplog.text
    for name in ["rtstruct.dcm", "test-SR.dcm", "no_meta.dcm", "DICOMDIR", "notes.txt"]:
        assert name in skipped
    for patient in patient_names - {""}:
        assert patient not in skipped
    assert find_dicom_series([tmp_path]) == find_dicom_series([tmp_path])


def _edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def test_inconsistent_size_names_the_file(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    bad = series.paths[3]
    small = np.zeros((10, 10), np.int16)
    _edit(bad, Rows=10, Columns=10, PixelData=small.tobytes())
    with pytest.raises(ImagingError, match="image size 10x10") as info:
        read_dicom_series(series)
    assert info.value.path == str(bad)


def test_inconsistent_orientation_names_the_file(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    bad = series.paths[5]
    _edit(bad, ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(ImagingError, match="ImageOrientationPatient") as info:
        read_dicom_series(series)
    assert info.value.path == str(bad)


def test_irregular_spacing_is_refused(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    by_position = sorted(
        series.paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2])
    )
    middle = by_position[6]
    position = [float(v) for v in pydicom.dcmread(middle).ImagePositionPatient]
    _edit(middle, ImagePositionPatient=[position[0], position[1], position[2] + 0.4])
    with pytest.raises(ImagingError, match=r"irregular slice spacing: gaps from 0\.6000 to 1\.4"):
        read_dicom_series(series)


def test_monochrome1_is_inverted(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    for path in series.paths:
        _edit(path, PhotometricInterpretation="MONOCHROME1")
    volume = read_dicom_series(series)
    data = mni_crop.data.astype(np.int64)
    np.testing.assert_array_equal(volume.data, data.max() + data.min() - data)


def test_unreadable_file_in_series_is_named(tmp_path, mni_crop):
    series = _write(mni_crop, tmp_path / "s")
    series.paths[2].write_bytes(b"garbage")
    with pytest.raises(ImagingError) as info:
        read_dicom_series(series)
    assert info.value.path == str(series.paths[2])
