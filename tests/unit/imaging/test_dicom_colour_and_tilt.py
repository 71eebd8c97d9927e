"""Colour (RGB and YBR) DICOM, and geometry notes: gantry tilt, files without geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.nifti import read_nifti
from portal.imaging.preview import build_preview, thumbnail_png
from portal.imaging.volume import Volume
from tests.support.dicom_data import read_one_series as _read
from tests.support.dicom_data import testdata as _testdata


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb.dcm",  # RGB, interleaved
        "color-pl.dcm",  # RGB, planar configuration 1
        "SC_rgb_expb.dcm",  # big endian
        "SC_ybr_full_uncompressed.dcm",  # YBR_FULL
        "SC_ybr_full_422_uncompressed.dcm",  # YBR_FULL_422
        "SC_rgb_jpeg_dcmtk.dcm",  # YBR_FULL in JPEG baseline
        "US1_J2KR.dcm",  # YBR_RCT in JPEG 2000
        "SC_rgb_rle.dcm",
    ],
)
def test_colour_frames_are_pydicoms_rgb_in_ijk_order(name: str) -> None:
    path = _testdata(name)
    volume = _read(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array  # pydicom converts YBR to RGB: the reference
    assert volume.is_rgb and volume.data.dtype == np.uint8
    assert volume.shape == (int(ds.Columns), int(ds.Rows), 1)
    np.testing.assert_array_equal(volume.data[:, :, 0, :], expected.transpose(1, 0, 2))


def test_ybr_and_rgb_of_one_picture_agree() -> None:
    rgb = _read(_testdata("SC_rgb.dcm")).data.astype(int)
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        other = _read(_testdata(name)).data.astype(int)
        assert np.abs(other - rgb).max() <= 6  # YBR rounding and JPEG, nothing more


def test_16_bit_colour_is_scaled_to_8_bits_and_frames_stack() -> None:
    path = _testdata("SC_rgb_16bit_2frame.dcm")
    volume = _read(path)
    stored = pydicom.dcmread(path).pixel_array  # (frames, rows, columns, 3) uint16
    assert volume.shape[2] == 2
    expected = np.rint(stored.astype(float) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(volume.data, expected.transpose(2, 1, 0, 3))


def test_colour_preview_keeps_colour() -> None:
    volume = _read(_testdata("SC_rgb.dcm"))
    preview = build_preview(volume, max_dim=64)
    assert preview.is_rgb and preview.image_u8.shape[3] == 3
    # The red band of the test picture stays red (not grey) in the preview.
    red = (preview.image_u8[..., 0] > 200) & (preview.image_u8[..., 1] < 50)
    assert red.any()
    assert thumbnail_png(preview, None).startswith(b"\x89PNG")


def test_file_without_geometry_is_noted() -> None:
    volume = _read(_testdata("SC_rgb.dcm"))
    assert any("no patient position" in note for note in volume.notes)
    assert not _read(_testdata("CT_small.dcm")).notes


def test_gantry_tilt_is_kept_and_reported(tmp_path: Path, mni_1mm) -> None:
    source = read_nifti(mni_1mm.image_paths[0])
    data = np.ascontiguousarray(source.data[70:110, 90:130, 80:96])
    affine = np.diag([1.0, 1.0, 1.5, 1.0])
    tilt = np.radians(12.0)
    affine[1, 2] = 1.5 * np.tan(tilt)  # each slice steps 0.32 mm anterior: a tilted gantry
    write_dicom_series(
        Volume(data, affine, "CT"),
        tmp_path,
        patient_name="Tilt^Test",
        study_description="tilt",
        series_description="tilt",
        modality="CT",
    )
    volume = _read(tmp_path)
    np.testing.assert_allclose(volume.affine_ras, affine, atol=1e-4)
    np.testing.assert_array_equal(volume.data, data)
    (note,) = volume.notes
    assert "gantry tilt of 12.00 degrees" in note


def test_straight_series_has_no_tilt_note(tmp_path: Path, mni_1mm) -> None:
    source = read_nifti(mni_1mm.image_paths[0])
    data = np.ascontiguousarray(source.data[70:110, 90:130, 80:84])
    write_dicom_series(
        Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]), "MR"),
        tmp_path,
        patient_name="A^B",
        study_description="s",
        series_description="s",
    )
    assert _read(tmp_path).notes == ()
