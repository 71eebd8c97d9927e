"""Real-unit preview values, checked against nibabel and pydicom (not against our readers)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.nifti import read_nifti
from portal.imaging.preview import build_preview
from portal.imaging.values import compact_values, units_of, value_preview
from portal.imaging.vti import read_vti_bytes, vti_bytes
from portal.imaging.windowing import CT_DEFAULT_WINDOW, robust_window


def _nibabel_preview(path: Path, step: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """nibabel's scaled voxels and affine, closest canonical, strided like the preview."""
    img = nib.as_closest_canonical(nib.load(path))
    si, sj, sk = step
    return img.get_fdata()[::si, ::sj, ::sk], img.affine


def test_mni_values_equal_nibabel_scaled_data_on_the_image_grid(mni_1mm):
    path = mni_1mm.image_paths[0]
    preview = build_preview(read_nifti(path))
    values = value_preview(preview)
    expected, affine = _nibabel_preview(path, preview.step)
    assert values.values.shape == preview.shape == expected.shape
    np.testing.assert_allclose(values.values, expected, rtol=1e-6)
    # One grid with image.vti: the origin is nibabel's canonical voxel (0, 0, 0).
    np.testing.assert_allclose(preview.origin_mm, affine[:3, 3], atol=1e-5)
    zooms = np.abs(np.diag(affine)[:3]) * preview.step
    np.testing.assert_allclose(preview.spacing_mm, zooms, atol=1e-6)
    image = read_vti_bytes(vti_bytes(values.values, preview.spacing_mm, preview.origin_mm))
    np.testing.assert_array_equal(image.array, values.values)
    assert values.value_range == (float(expected.min()), float(expected.max()))
    assert values.auto_window == robust_window(expected)
    assert values.default_window == preview.window and not values.invert


@pytest.mark.parametrize(
    ("slope", "inter", "dtype"), [(1.0, -1024.0, "int16"), (0.5, -1000.25, "float32")]
)
def test_scaled_ct_in_las_order_gives_hounsfield_units(tmp_path, slope, inter, dtype):
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 3000, size=(70, 50, 30), dtype=np.int16)
    affine = np.diag([-0.7, 0.7, 2.5, 1.0])  # LAS on disk: i must be flipped
    affine[:3, 3] = (30.0, -20.0, -40.0)
    img = nib.Nifti1Image(stored, affine)
    img.header.set_slope_inter(slope, inter)
    path = tmp_path / "ct.nii.gz"
    nib.save(img, path)
    volume = read_nifti(path)
    volume = type(volume)(volume.data, volume.affine_ras, "CT", "ct")
    preview = build_preview(volume, max_dim=32)
    values = value_preview(preview)
    expected, canonical_affine = _nibabel_preview(path, preview.step)
    assert values.values.dtype.name == dtype
    np.testing.assert_allclose(values.values, expected, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(preview.origin_mm, canonical_affine[:3, 3], atol=1e-5)
    assert values.default_window == CT_DEFAULT_WINDOW  # the window image.vti used, in HU
    assert values.meta("CT", None)["units"] == "HU"


def check_hu_at_world_points(
    path: Path,
    values: np.ndarray,
    origin_mm: tuple[float, float, float],
    spacing_mm: tuple[float, float, float],
) -> int:
    """Assert that axial preview voxels of a one-slice DICOM file hold pydicom's modality
    LUT output at the same patient position, found from the header alone; return how
    many voxels were compared."""
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    position = np.asarray(ds.ImagePositionPatient, float)
    row_cos = np.asarray(ds.ImageOrientationPatient[:3], float)
    col_cos = np.asarray(ds.ImageOrientationPatient[3:], float)
    d_row, d_col = (float(v) for v in ds.PixelSpacing)
    ni, nj, _ = values.shape
    checked = 0
    for i in range(0, ni, 7):
        for j in range(0, nj, 5):
            ras = np.asarray(origin_mm) + np.array([i, j, 0]) * np.asarray(spacing_mm)
            lps = ras * (-1.0, -1.0, 1.0)
            column = round(float((lps - position) @ row_cos) / d_col)
            row = round(float((lps - position) @ col_cos) / d_row)
            assert values[i, j, 0] == hu[row, column], (i, j, row, column)
            checked += 1
    return checked


def test_dicom_ct_values_are_pydicom_modality_lut_at_the_same_world_point():
    path = Path(get_testdata_file("CT_small.dcm", download=False))
    (series,) = find_dicom_series([path])
    preview = build_preview(read_dicom_series(series))
    values = value_preview(preview)
    checked = check_hu_at_world_points(path, values.values, preview.origin_mm, preview.spacing_mm)
    assert checked > 300
    assert values.values.dtype == np.int16
    assert values.default_window == CT_DEFAULT_WINDOW


def test_monochrome1_values_are_uninverted_and_say_invert():
    path = Path(get_testdata_file("RG3_UNCI.dcm", download=False))
    (series,) = find_dicom_series([path])
    volume = read_dicom_series(series)  # inverted by the reader: bright means high
    preview = build_preview(volume, max_dim=256)
    read_range = (float(volume.data.min()), float(volume.data.max()))
    values = value_preview(preview, monochrome1_range=read_range)
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stored = apply_modality_lut(ds.pixel_array, ds)
    # No patient geometry: the reader stacks (i, j) = (column, row) at the origin, and
    # the closest-canonical order flips i and j (LPS -> RAS).
    si, sj, _ = preview.step
    expected = stored.T[::-1, ::-1][::si, ::sj]
    np.testing.assert_array_equal(values.values[:, :, 0], expected)
    assert values.invert
    # The window image.vti was made with, mirrored into the stored values' scale.
    about = sum(read_range)
    assert values.default_window.low == pytest.approx(about - preview.window.high)
    assert values.default_window.high == pytest.approx(about - preview.window.low)


def test_rgb_preview_has_no_values():
    from portal.imaging.volume import Volume

    rgb = Volume(np.zeros((4, 4, 2, 3), np.uint8), np.eye(4), "XC", "colour")
    with pytest.raises(ValueError, match="RGB"):
        value_preview(build_preview(rgb))


def test_compact_values_picks_int16_only_when_exact():
    assert compact_values(np.array([-32768.0, 32767.0])).dtype == np.int16
    assert compact_values(np.array([0, 40000], np.int32)).dtype == np.float32
    assert compact_values(np.array([0.0, 1.5])).dtype == np.float32
    cleaned = compact_values(np.array([np.nan, 2.0, np.inf], np.float32))
    assert cleaned.dtype == np.int16 and cleaned.tolist() == [0, 2, 0]
    assert units_of("ct") == "HU" and units_of("PT") == ""
